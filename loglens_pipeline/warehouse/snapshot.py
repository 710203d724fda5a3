"""The reader copy: a consistent copy of the warehouse that BI tools open read-only.

DuckDB allows one writer process or many readers, never both, and a reader holding the file
makes every write fail. So readers never open the warehouse: after runs that change it, the
writer (inside the warehouse pool) checkpoints, copies the file to a temporary name, fsyncs it
and renames it over the reader copy. Readers that hold the old copy keep reading it; new
connections see the new one; the writer is never blocked by a reader.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class Publication:
    path: Path
    bytes: int
    seconds: float


def publish_reader_copy(
    conn: duckdb.DuckDBPyConnection, warehouse: Path, reader: Path
) -> Publication:
    """Checkpoint the warehouse through `conn` (the writer) and atomically replace `reader`."""
    started = time.perf_counter()
    conn.execute("CHECKPOINT")
    reader.parent.mkdir(parents=True, exist_ok=True)
    temporary = reader.with_name(f".{reader.name}.{os.getpid()}.tmp")
    shutil.copyfile(warehouse, temporary)
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, reader)
    directory = os.open(reader.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return Publication(reader, reader.stat().st_size, time.perf_counter() - started)
