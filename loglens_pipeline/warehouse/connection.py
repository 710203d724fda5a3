"""One way to open the warehouse, so every writer in a process uses the same DuckDB settings.

DuckDB refuses a second connection to the same file with a different configuration, so the
Dagster resource, the IO manager and the CLI all take their settings from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from loglens_pipeline.config.models import WarehouseConfig


def connection_config(warehouse: WarehouseConfig) -> dict[str, str]:
    """DuckDB settings applied when the file is opened."""
    return {"memory_limit": warehouse.memory_limit, "threads": str(warehouse.threads)}


def use_utc(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Make TIMESTAMPTZ -> TIMESTAMP casts yield UTC whatever the host's zone.

    TimeZone cannot go into the connect-time config: it needs the ICU extension, which DuckDB
    loads only after the database is open.
    """
    conn.execute("SET TimeZone = 'UTC'")
    return conn


@contextmanager
def connect(
    path: Path, warehouse: WarehouseConfig, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file (creating its folder for writers) and close it afterwards."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only, config=connection_config(warehouse))
    try:
        use_utc(conn)
        yield conn
    finally:
        conn.close()
