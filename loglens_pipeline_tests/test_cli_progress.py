"""Progress of long CLI work: what ingestion and runs publish, the bars on stderr, and the
summary tables `ingest`, `backfill` and `demo` end with on stdout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loglens_pipeline import progress
from loglens_pipeline.cli import app
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.ingest.ingestor import FileResult, IngestReport
from loglens_pipeline.runs import run_ingest
from loglens_pipeline_tests.conftest import query

HOUR_A = datetime(2026, 11, 20, 10)
HOUR_B = datetime(2026, 11, 20, 11)


def write_logs(project, name: str, hour: datetime, count: int, *, broken: int = 0) -> list[Path]:
    """`count` lines per source over `hour`, the last `broken` of each unparseable."""
    app_file = project.logs_dir / "app" / f"{name}.jsonl"
    nginx_file = project.logs_dir / "nginx" / f"{name}.log"
    for file in (app_file, nginx_file):
        file.parent.mkdir(parents=True, exist_ok=True)
    with app_file.open("a") as a, nginx_file.open("a") as n:
        for i in range(count):
            t = hour + timedelta(seconds=i * 3600 // count)
            if i >= count - broken:
                a.write("{not json\n")
                n.write("not an access log line\n")
                continue
            record = {
                "ts": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "level": "INFO",
                "service": ["cart", "search"][i % 2],
                "msg": f"GET /api/items/{i} served from the read replica in region eu-west",
                "status": 200,
                "latency_ms": 10.0 + i % 7,
                "user_id": f"u{i % 13}",
            }
            a.write(json.dumps(record) + "\n")
            n.write(
                f'10.0.0.{i % 9} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET /api/cart HTTP/1.1" '
                f'200 {i} "-" "curl/8.5"\n'
            )
    return [app_file, nginx_file]


def recorder() -> tuple[list, Callable[[object], None]]:
    """Events as published; a file's totals copied at the time, since the ingestor updates them."""
    events: list = []

    def record(event: object) -> None:
        if isinstance(event, FileResult):
            events.append((event.path, event.bytes, event.lines))
        else:
            events.append(event)

    return events, record


def of_type(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_ingestion_publishes_pending_bytes_every_chunk_and_the_report(project, instance):
    app_file, nginx_file = write_logs(project, "a", HOUR_A, 1500, broken=3)
    sizes = {str(f): f.stat().st_size for f in (app_file, nginx_file)}
    defs = build_definitions(project)
    events, record = recorder()
    with progress.subscribed(record):
        assert run_ingest(defs, instance, trigger="test").success

    (plan,) = of_type(events, progress.IngestPlanned)
    assert {f.path: f.bytes for f in plan.files} == sizes
    assert plan.bytes == sum(sizes.values())
    (run,) = of_type(events, progress.AssetsPlanned)
    assert (run.job, run.assets) == ("ingest_job", 1)
    report = events[-1]
    assert isinstance(report, IngestReport)  # after the last chunk
    assert (report.total("events"), report.total("quarantined")) == (2 * 1497, 6)
    chunks = [e for e in events if isinstance(e, tuple)]
    for result in report.files:
        # One event per committed chunk, each with the file's totals so far.
        published = [(b, lines) for path, b, lines in chunks if path == result.path]
        assert len(published) == result.chunks
        assert published == sorted(set(published))
        assert published[-1] == (sizes[result.path], 1500)
    assert sum(r.chunks for r in report.files) > 2  # 64 KiB chunks: bars move within a file

    # Appended lines: only the new bytes are pending and read.
    with app_file.open("a") as a:
        a.write('{"ts": "2026-11-20T10:59:00.000Z", "level": "WARN", "msg": "late"}\n' * 200)
    appended = app_file.stat().st_size - sizes[str(app_file)]
    events, record = recorder()
    with progress.subscribed(record):
        assert run_ingest(defs, instance, trigger="test").success
    (plan,) = of_type(events, progress.IngestPlanned)
    assert {f.path: f.bytes for f in plan.files} == {str(app_file): appended, str(nginx_file): 0}
    assert [e for e in events if isinstance(e, tuple)] == [(str(app_file), appended, 200)]


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of the rich tables in `text`, by their first cell."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def cli(project, monkeypatch):
    """Runs `loglens` on the test project; its Dagster home lives in the project's data dir."""
    monkeypatch.setenv("LOGLENS_CONFIG_DIR", str(project.paths.config_dir))
    monkeypatch.setenv("LOGLENS_DATA_DIR", str(project.paths.data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(project.paths.data_dir / "dagster_home"))

    def invoke(*args: str):
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    return invoke


def test_ingest_command_summarizes_each_source_and_shows_the_bar_on_stderr(project, cli):
    files = write_logs(project, "a", HOUR_A, 1200, broken=5)
    app_bytes, nginx_bytes = (f.stat().st_size for f in files)

    result = cli("ingest")
    rows = table_rows(result.stdout)
    assert rows["source"] == ["files", "bytes", "lines", "events", "quarantined", "lines/s"]
    assert rows["app"][:5] == ["1", f"{app_bytes:,}", "1,200", "1,195", "5"]
    assert rows["nginx"][:5] == ["1", f"{nginx_bytes:,}", "1,200", "1,195", "5"]
    assert rows["total"][:5] == ["2", f"{app_bytes + nginx_bytes:,}", "2,400", "2,390", "10"]
    assert all(int(rows[name][5].replace(",", "")) > 0 for name in ("app", "nginx", "total"))
    assert "1 event hour: 2026-11-20 10:00 .. 2026-11-20 10:00 UTC" in result.stdout
    # Not a terminal: the bars print their final state once, on stderr only.
    assert "2/2 files" in result.stderr
    assert "2,400 lines" in result.stderr
    assert "2/2 files" not in result.stdout

    result = cli("ingest")
    assert table_rows(result.stdout)["total"][:5] == ["0", "0", "0", "0", "0"]
    assert "no new complete lines" in result.stdout


@pytest.mark.slow
def test_backfill_command_summarizes_hours_assets_and_rows(project, cli):
    write_logs(project, "a", HOUR_A, 600)
    write_logs(project, "b", HOUR_B, 300)
    cli("ingest")
    events, record = recorder()
    with progress.subscribed(record):
        result = cli("backfill", "--from", "2026-11-20T10", "--to", "2026-11-20T11")

    rows = table_rows(result.stdout)
    assert rows["hours"] == ["2 (2026-11-20 10:00 .. 2026-11-20 11:00 UTC)"]
    assets = 2 * len(project.metrics)
    assert rows["assets"] == [str(assets)]
    written = {
        area: sum(
            query(project, f'SELECT count(*) FROM {area}."{m.spec.name}"')[0][0]
            for m in project.metrics
        )
        for area in ("metrics", "anomalies")
    }
    assert written["metrics"] > 0
    assert rows["rows written"] == [
        f"{sum(written.values()):,}  metrics: {written['metrics']:,}, anomalies: {written['anomalies']:,}"
    ]
    assert float(rows["seconds"][0]) > 0
    (planned,) = of_type(events, progress.AssetsPlanned)
    assert (planned.job, planned.assets) == ("metrics_job", assets)
    stored = of_type(events, progress.AssetStored)
    assert sorted(e.output for e in stored) == sorted(
        f"{area}__{m.spec.name}" for area in ("metrics", "anomalies") for m in project.metrics
    )
    assert f"{assets}/{assets} assets" in result.stderr


@pytest.mark.slow
def test_demo_piped_to_a_file_prints_its_summary_and_the_bars_on_stderr(tmp_path):
    env = {
        **os.environ,
        "LOGLENS_CONFIG_DIR": str(REPO_ROOT / "configs"),
        "LOGLENS_DATA_DIR": str(tmp_path / "data"),
    }
    loglens = Path(sys.executable).with_name("loglens")
    proc = subprocess.run(
        [str(loglens), "demo", "--hours", "2", "--lines-per-hour", "600"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = table_rows(proc.stdout)
    lines = summary["lines"][0]
    assert summary["files"] == ["6"]
    assert "Metrics (peak value over the sample)" in proc.stdout
    assert "6/6 files" not in proc.stdout
    assert f"6/6 files {lines} lines" in proc.stderr
    assert "done ingesting" in proc.stderr
    assert re.search(r"metrics_job .* 20/20 assets", proc.stderr)
