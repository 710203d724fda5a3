"""Resources: the DuckDB warehouse, shared by ingestion and the metric IO manager."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.failures import explained_failures
from loglens_pipeline.defs.project import Project
from loglens_pipeline.warehouse.connection import connection_config, use_utc
from loglens_pipeline.warehouse.schema import ensure_raw_schema


def warehouse_resource(project: Project) -> DuckDBResource:
    """The warehouse as a Dagster resource; connections are opened only inside runs."""
    return DuckDBResource(
        database=str(project.warehouse_path),
        connection_config=connection_config(project.config.warehouse),
    )


@contextmanager
def warehouse_session(
    project: Project, warehouse: DuckDBResource
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse inside a step: created if new, UTC session, raw tables in place, and
    known failures (lock, full disk, missing folder) explained in the step's error."""
    project.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        explained_failures(project.warehouse_path, project.reader_path),
        warehouse.get_connection() as conn,
    ):
        use_utc(conn)
        ensure_raw_schema(conn)
        yield conn
