"""BI readers and the pipeline at the same time, as two real processes: neither side may see a
lock error, a partial state or a failed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import duckdb
import pytest
from sqlalchemy import create_engine, text

from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.runs import run_ingest, run_publish
from loglens_pipeline_tests.defs.test_log_file_sensor import write_app_file


def child_env(project) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LOGLENS_CONFIG_DIR=str(project.paths.config_dir),
        LOGLENS_DATA_DIR=str(project.paths.data_dir),
        PYTHONPATH=str(REPO_ROOT),
    )
    env.pop("DAGSTER_HOME", None)
    return env


@pytest.mark.slow
def test_bi_reader_and_pipeline_run_side_by_side(project, tmp_path):
    env = child_env(project)
    stop, reader_report, writer_report = (
        tmp_path / "stop",
        tmp_path / "reader.json",
        tmp_path / "writer.json",
    )
    reader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loglens_pipeline_tests.warehouse.bi_reader",
            str(project.reader_path),
            str(stop),
            str(reader_report),
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    started = time.time()
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "loglens_pipeline_tests.warehouse.concurrent_writer",
                "4",
                str(writer_report),
            ],
            env=env,
            cwd=REPO_ROOT,
            check=True,
            timeout=600,
        )
    finally:
        stop.touch()
        reader.wait(timeout=60)
    writer = json.loads(writer_report.read_text())
    seen = json.loads(reader_report.read_text())
    print(
        f"\nwriter: {writer['runs']} runs, {writer['failures']} failed in {time.time() - started:.1f}s; "
        f"reader: {seen['queries']} queries, {seen['error_count']} errors, "
        f"{seen['distinct_states']} distinct states"
    )
    assert writer["runs"] == 12 and writer["failures"] == 0
    assert seen["error_count"] == 0, seen["errors"]
    assert seen["inconsistent"] == 0, "a reader saw offsets that disagree with the rows"
    assert seen["queries"] > 20
    assert seen["distinct_states"] >= 2, "readers must see new data while the pipeline runs"
    with duckdb.connect(str(project.reader_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.events").fetchall() == [(2000,)]
        total = conn.execute("SELECT sum(lines) FROM raw.file_offsets").fetchall()[0][0]
    assert total == 2000, "the final copy holds every line the writer produced"


def test_a_reader_holding_the_copy_never_blocks_the_writer(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "a.jsonl", 10)
    assert run_ingest(defs, instance, trigger="test").success
    assert run_publish(defs, instance, trigger="test").success
    engine = create_engine(f"duckdb:///{project.reader_path}", connect_args={"read_only": True})
    with engine.connect() as held:
        before = held.execute(text("SELECT count(*) FROM raw.events")).scalar()
        write_app_file(project, "a.jsonl", 5, start=10)
        assert run_ingest(defs, instance, trigger="test").success
        assert run_publish(defs, instance, trigger="test").success
        # The held connection keeps its consistent old copy ...
        assert held.execute(text("SELECT count(*) FROM raw.events")).scalar() == before == 10
    engine.dispose()
    # ... and a new connection in another process sees the new one.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb,sys; print(duckdb.connect(sys.argv[1], read_only=True)"
            ".execute('select count(*) from raw.events').fetchall()[0][0])",
            str(project.reader_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "15"


def test_analytics_views_describe_the_metrics(project, instance):
    from datetime import datetime

    from loglens_pipeline.runs import run_metrics_range
    from loglens_pipeline_tests.defs.test_metric_assets import write_events

    write_events(project, "a", datetime(2026, 11, 20, 10), 120, errors=6)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    hour = datetime(2026, 11, 20, 10)
    assert run_metrics_range(defs, instance, hour, hour, trigger="test").success
    assert run_publish(defs, instance, trigger="test").success
    with duckdb.connect(str(project.reader_path), read_only=True) as conn:
        catalog = dict(
            conn.execute("SELECT metric, aggregation FROM analytics.metric_catalog").fetchall()
        )
        assert catalog["error_rate"] == "ratio" and len(catalog) == len(project.metrics)
        series = conn.execute(
            "SELECT DISTINCT series FROM analytics.metric_points WHERE metric = 'error_rate' ORDER BY 1"
        ).fetchall()
        assert series == [("service=cart",), ("service=search",)]
        health = conn.execute(
            "SELECT source, lines, events, quarantined FROM analytics.ingest_health ORDER BY 1"
        ).fetchall()
        assert health == [("app", 120, 120, 0), ("nginx", 120, 120, 0)]
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'metric_points'"
            ).fetchall()
        )
        assert types["bucket_start"] == "TIMESTAMP" and types["value"] == "DOUBLE"
