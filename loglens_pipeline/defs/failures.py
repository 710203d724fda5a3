"""Failures explained: known causes become one clear message naming the cause and the fix."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from loglens_pipeline.config import ConfigError


def explain(exc: BaseException, warehouse: Path, reader: Path) -> str | None:
    """The cause and the fix for errors users meet, or None for anything else."""
    text = str(exc)
    if isinstance(exc, ConfigError):
        return f"Bad configuration. Fix the YAML and check it with `loglens validate`.\n{text}"
    if isinstance(exc, duckdb.IOException) and "lock" in text.lower():
        holder = re.search(r"PID (\d+)", text)
        who = f"process {holder.group(1)}" if holder else "another process"
        return (
            f"The warehouse {warehouse} is locked by {who}. DuckDB allows one writer or many "
            f"readers at a time: close BI tools or notebooks that opened it and point them at "
            f"the reader copy {reader} instead, then re-execute this run."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            f"The disk is full ({exc.filename or warehouse}). Free space or move the data "
            "directory (LOGLENS_DATA_DIR), lower retention in configs/loglens.yaml, then "
            "re-execute this run: nothing was committed past the last complete chunk."
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return (
            "DuckDB ran out of memory. Raise warehouse.memory_limit or lower "
            f"ingest.chunk_bytes in configs/loglens.yaml. ({text.splitlines()[0]})"
        )
    if isinstance(exc, FileNotFoundError):
        return (
            f"{exc.filename or 'A file or folder'} does not exist. Create it, or fix the path: "
            "the data directory is LOGLENS_DATA_DIR (default ./data), the watched folder "
            "ingest.logs_dir and the warehouse warehouse.path in configs/loglens.yaml."
        )
    if isinstance(exc, PermissionError):
        return f"Permission denied on {exc.filename}: give the Dagster user read access (logs) or write access (data)."
    return None


@contextmanager
def explained_failures(warehouse: Path, reader: Path) -> Iterator[None]:
    """Turn known errors inside a step into a `dg.Failure` whose description says what to do."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        message = explain(exc, warehouse, reader)
        if message is None:
            raise
        raise dg.Failure(
            description=message,
            metadata={"cause": dg.MetadataValue.text(f"{type(exc).__name__}: {exc}")},
        ) from exc
