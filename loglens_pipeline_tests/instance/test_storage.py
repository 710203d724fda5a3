"""The shipped instance storage: Dagster's SQLite layout and behaviour, with pooled connections.

Each test opens a real instance from the shipped `dagster.yaml` in a temporary DAGSTER_HOME and
checks what Dagster reports back: runs, events and materializations, also across instances,
processes and a fork.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from sqlalchemy import text

from loglens_pipeline.instance import prepare_dagster_home
from loglens_pipeline.instance.storage import (
    MAX_OPEN_RUN_SHARDS,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
    PooledSqliteScheduleStorage,
)
from loglens_pipeline_tests.conftest import shipped_test_instance


@pytest.fixture
def instance(tmp_path: Path):
    yield from shipped_test_instance(tmp_path / "home")


def materialize(instance: dg.DagsterInstance, run_id: str, key: str, partition: str) -> None:
    materialization = dg.AssetMaterialization(asset_key=key, partition=partition)
    event = DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        "test",
        event_specific_data=StepMaterializationData(materialization),
    )
    instance.report_dagster_event(event, run_id)


def new_run(instance: dg.DagsterInstance) -> str:
    return instance.create_run_for_job(dg.GraphDefinition("job").to_job()).run_id


def latest_partition(instance: dg.DagsterInstance, key: str) -> str | None:
    record = instance.get_latest_materialization_event(dg.AssetKey(key))
    return None if record is None else record.asset_materialization.partition


def test_shipped_config_uses_pooled_storage_in_the_stock_layout(instance, tmp_path):
    assert isinstance(instance.run_storage, PooledSqliteRunStorage)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    assert isinstance(instance.schedule_storage, PooledSqliteScheduleStorage)
    run_id = new_run(instance)
    materialize(instance, run_id, "a", "p1")
    home = tmp_path / "home"
    files = {p.relative_to(home).as_posix() for p in home.rglob("*.db")}
    assert {
        "history/runs.db",
        "history/runs/index.db",
        f"history/runs/{run_id}.db",
        "schedules/schedules.db",
    } <= files


def test_wal_commits_without_a_sync_per_transaction(instance):
    engine = instance.event_log_storage._engines.get(
        instance.event_log_storage.conn_string_for_shard("index")
    )
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_a_stock_instance_reads_what_the_pooled_one_wrote(instance, tmp_path):
    run_id = new_run(instance)
    for partition in ("p1", "p2", "p3"):
        materialize(instance, run_id, "a", partition)
    stock = {"storage": {"sqlite": {"base_dir": str(tmp_path / "home")}}}
    with dg.instance_for_test(overrides=stock, temp_dir=str(tmp_path / "home")) as other:
        assert type(other.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert other.get_run_by_id(run_id) is not None
        assert latest_partition(other, "a") == "p3"
        assert len(other.all_logs(run_id)) == 3


def test_pooled_connections_see_commits_of_other_processes(instance, tmp_path):
    run_id = new_run(instance)
    materialize(instance, run_id, "a", "before")
    assert latest_partition(instance, "a") == "before"  # the pool now holds open connections

    writer = textwrap.dedent(
        """
        import dagster as dg
        from loglens_pipeline_tests.instance.test_storage import materialize

        with dg.DagsterInstance.get() as instance:
            run_id = instance.create_run_for_job(dg.GraphDefinition("other").to_job()).run_id
            materialize(instance, run_id, "a", "from-another-process")
            print(run_id)
        """
    )
    home = prepare_dagster_home(tmp_path / "home")
    other_run = subprocess.run(
        [sys.executable, "-c", writer],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    assert latest_partition(instance, "a") == "from-another-process"
    assert instance.get_run_by_id(other_run).job_name == "other"


def _materialize_in_child(instance: dg.DagsterInstance, run_id: str) -> None:
    materialize(instance, run_id, "a", "from-the-fork")


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_a_forked_child_opens_its_own_connections(instance):
    run_id = new_run(instance)
    materialize(instance, run_id, "a", "parent")  # pooled connections exist before the fork
    child = multiprocessing.get_context("fork").Process(
        target=_materialize_in_child, args=(instance, run_id)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    materialize(instance, run_id, "a", "parent-again")
    partitions = [
        entry.dagster_event.event_specific_data.materialization.partition
        for entry in instance.all_logs(run_id)
    ]
    assert partitions == ["parent", "from-the-fork", "parent-again"]


def test_open_run_shards_are_bounded_and_evicted_ones_still_readable(instance):
    runs = [new_run(instance) for _ in range(MAX_OPEN_RUN_SHARDS + 8)]
    for i, run_id in enumerate(runs):
        materialize(instance, run_id, f"asset_{i}", "p")
    cache = instance.event_log_storage._engines._engines
    assert len(cache) <= MAX_OPEN_RUN_SHARDS + 1
    assert [len(instance.all_logs(run_id)) for run_id in runs] == [1] * len(runs)
    assert latest_partition(instance, "asset_0") == "p"


def test_wipe_then_store_again(instance):
    run_id = new_run(instance)
    materialize(instance, run_id, "a", "p1")
    instance.event_log_storage.wipe()
    assert instance.get_latest_materialization_event(dg.AssetKey("a")) is None
    materialize(instance, run_id, "a", "p2")
    assert latest_partition(instance, "a") == "p2"


def test_materializing_assets_records_runs_and_partitions(instance):
    hours = dg.HourlyPartitionsDefinition(start_date="2026-11-20-00:00")

    @dg.asset(partitions_def=hours)
    def hourly() -> int:
        return 1

    result = dg.materialize([hourly], instance=instance, partition_key="2026-11-20-03:00")
    assert result.success
    assert instance.get_run_by_id(result.run_id).is_success
    assert instance.get_materialized_partitions(dg.AssetKey("hourly")) == {"2026-11-20-03:00"}


def _schema(path: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return (
            conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
            + conn.execute("SELECT version_num FROM alembic_version").fetchall()
        )


def test_new_run_shards_are_copies_of_a_stock_initialized_shard(instance, tmp_path):
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    first, second = new_run(instance), new_run(instance)
    for run_id in (first, second):
        materialize(instance, run_id, "a", run_id)
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    with stock.run_connection("reference"):
        pass
    reference = _schema(tmp_path / "stock" / "reference.db")
    storage = instance.event_log_storage
    assert _schema(Path(storage.path_for_shard(second))) == reference
    assert _schema(Path(storage.path_for_shard(first))) == reference
    assert [path.name for path in Path(storage._base_dir).glob("*.tmp")] == []


def test_a_shard_another_process_started_is_initialized_in_place(instance):
    run_id = new_run(instance)
    shard = Path(instance.event_log_storage.path_for_shard(run_id))
    # What SQLite leaves when another process has just opened the shard: an empty file.
    shard.unlink(missing_ok=True)
    shard.touch()
    materialize(instance, run_id, "a", "p")
    assert latest_partition(instance, "a") == "p"
    assert len(instance.all_logs(run_id)) == 1


def test_without_hard_links_new_shards_are_initialized_in_place(instance, monkeypatch):
    def no_links(*_args):
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    run_id = new_run(instance)
    materialize(instance, run_id, "a", "p")
    assert latest_partition(instance, "a") == "p"
    assert not list(Path(instance.event_log_storage.path_for_shard(run_id)).parent.glob("*.tmp"))
