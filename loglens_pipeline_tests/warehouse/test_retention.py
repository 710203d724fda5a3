"""Retention deletes expired rows, keeps file offsets, and holds back for active backfills."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.runs import run_ingest
from loglens_pipeline_tests.conftest import query


def write_days(project, days_ago: list[int]) -> datetime:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    path = project.logs_dir / "app" / "days.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for days in days_ago:
            t = now - timedelta(days=days)
            handle.write(json.dumps({"ts": t.isoformat() + "Z", "msg": f"{days} days ago"}) + "\n")
    return now


def retention(defs, instance) -> dict:
    result = defs.resolve_job_def("retention_job").execute_in_process(instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_expired_raw_rows_are_deleted_and_offsets_kept(project, instance):
    write_days(project, [40, 35, 10, 1])
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    meta = retention(defs, instance)
    assert meta["rows_deleted"] == 2
    assert sorted(r[0] for r in query(project, "SELECT message FROM raw.events")) == [
        "1 days ago",
        "10 days ago",
    ]
    assert query(project, "SELECT lines FROM raw.file_offsets") == [(4,)]
    assert run_ingest(defs, instance, trigger="test").success
    assert query(project, "SELECT count(*) FROM raw.events") == [(2,)], (
        "offsets keep old lines from coming back"
    )


def test_rows_an_active_backfill_needs_are_kept(project, instance):
    write_days(project, [40, 35, 10, 1])
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    start = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(
        days=36
    )
    instance.add_run(
        DagsterRun(
            job_name="metrics_job",
            run_id="backfill-in-progress",
            status=dg.DagsterRunStatus.STARTED,
            tags={
                "dagster/asset_partition_range_start": partition_key(start),
                "dagster/asset_partition_range_end": partition_key(start + timedelta(hours=5)),
            },
        )
    )
    meta = retention(defs, instance)
    assert meta["held_back_for_run_from"] == str(start)
    assert meta["rows_deleted"] == 0, "the 40- and 35-day-old rows are within the backfill's reach"
    assert query(project, "SELECT count(*) FROM raw.events") == [(4,)]
