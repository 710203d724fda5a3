"""Failures say what happened and what to do, not just a stack trace."""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from loglens_pipeline.defs.failures import explain, explained_failures

HOLD_LOCK = """
import duckdb, sys, time
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def locked_warehouse(tmp_path):
    path = tmp_path / "loglens.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    yield path, holder.pid
    holder.kill()
    holder.wait()


def test_a_locked_warehouse_names_the_holder_and_the_fix(locked_warehouse, tmp_path):
    path, pid = locked_warehouse
    started = time.monotonic()
    with pytest.raises(duckdb.IOException) as info:
        duckdb.connect(str(path))
    assert time.monotonic() - started < 30
    message = explain(info.value, path, tmp_path / "reader.duckdb")
    assert f"The warehouse {path} is locked by process {pid}" in message
    assert f"point them at the reader copy {tmp_path / 'reader.duckdb'}" in message


def test_a_full_disk_says_what_to_free():
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/warehouse/loglens.duckdb")
    message = explain(exc, Path("/data/warehouse/loglens.duckdb"), Path("/r"))
    assert message.startswith("The disk is full (/data/warehouse/loglens.duckdb)")
    assert "LOGLENS_DATA_DIR" in message


def test_a_missing_folder_names_it_and_the_settings_that_point_there(tmp_path):
    missing = tmp_path / "nowhere" / "logs"
    with pytest.raises(FileNotFoundError) as info:
        list(missing.iterdir())
    message = explain(info.value, tmp_path / "w.duckdb", tmp_path / "r.duckdb")
    assert message.startswith(f"{missing} does not exist. Create it, or fix the path")
    assert "LOGLENS_DATA_DIR" in message and "ingest.logs_dir" in message


def test_unknown_errors_keep_their_traceback():
    with pytest.raises(ZeroDivisionError), explained_failures(Path("w"), Path("r")):
        _ = 1 / 0


def test_known_errors_become_a_dagster_failure_with_the_cause():
    with pytest.raises(dg.Failure) as info, explained_failures(Path("w"), Path("r")):
        raise OSError(errno.ENOSPC, "No space left on device", "w")
    assert info.value.description.startswith("The disk is full")
    assert "No space left" in info.value.metadata["cause"].value
