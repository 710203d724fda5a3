"""Exactly-once ingestion on real files into a real DuckDB file: counts, appends, re-runs, crashes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from loglens_pipeline.ingest.discovery import all_source_files
from loglens_pipeline.ingest.identity import stat_file
from loglens_pipeline.ingest.ingestor import FileResult, ingest_files
from loglens_pipeline.samples.generator import Incident, generate_sample_logs
from loglens_pipeline.warehouse.connection import connect
from loglens_pipeline.warehouse.schema import ensure_raw_schema

START = datetime(2026, 11, 20, tzinfo=UTC)
# How the generator's malformed kinds must be classified, per source.
EXPECTED_REASON = {
    "app": {
        "truncated_json": "invalid_json",
        "garbage": "invalid_json",
        "invalid_utf8": "invalid_utf8",
        "unparseable_ts": "bad_timestamp",
        "missing_ts": "missing_timestamp",
        "blank": "blank_line",
    },
    "nginx": {"garbage": "no_match", "invalid_utf8": "invalid_utf8"},
}


class Crash(Exception):
    """Stands for the process dying between two chunk commits."""


def ingest_all(project, *, after_commit=None):
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [
            (source, stat_file(path, source.name))
            for source, path in all_source_files(project.logs_dir, project.config.sources)
        ]
        return ingest_files(
            conn,
            work,
            project.config.ingest,
            ingested_at=datetime(2026, 11, 26),
            after_commit=after_commit,
        )


def snapshot(project) -> dict[str, list[tuple]]:
    """Every row of the raw tables, ingestion times left out, in a stable order."""
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        return {
            "events": conn.execute(
                "SELECT * EXCLUDE (ingested_at) FROM raw.events ORDER BY file_id, byte_offset"
            ).fetchall(),
            "quarantine": conn.execute(
                "SELECT * EXCLUDE (ingested_at) FROM raw.quarantine ORDER BY file_id, byte_offset"
            ).fetchall(),
            "offsets": conn.execute(
                "SELECT * EXCLUDE (first_ingested_at, last_ingested_at) FROM raw.file_offsets "
                "ORDER BY file_id"
            ).fetchall(),
        }


@pytest.fixture
def sample(project):
    return generate_sample_logs(
        project.logs_dir,
        start=START,
        hours=3,
        lines_per_hour=3000,
        seed=11,
        incident=Incident("payments", START, START.replace(minute=30)),
    )


def test_counts_match_the_independently_generated_fixture(project, sample):
    report = ingest_all(project)
    assert report.total("lines") == sample.total_lines
    assert report.total("events") == sample.valid_lines
    assert report.total("quarantined") == sample.malformed_lines
    assert max(f.chunks for f in report.files) > 1, "fixture must span several transactions"
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        for entry in sample.files:
            path = str(project.logs_dir / entry.path)
            events = conn.execute(
                "SELECT count(*) FROM raw.events WHERE file_path = ?", [path]
            ).fetchone()[0]
            reasons = dict(
                conn.execute(
                    "SELECT reason, count(*) FROM raw.quarantine WHERE file_path = ? GROUP BY reason",
                    [path],
                ).fetchall()
            )
            expected: dict[str, int] = {}
            for kind, count in entry.malformed.items():
                if count:
                    reason = EXPECTED_REASON[entry.source][kind]
                    expected[reason] = expected.get(reason, 0) + count
            assert events == entry.valid_lines, entry.path
            assert reasons == expected, entry.path
            lines, ev, q, offset = conn.execute(
                "SELECT lines, events, quarantined, committed_offset FROM raw.file_offsets WHERE path = ?",
                [path],
            ).fetchone()
            assert lines == ev + q == entry.total_lines
            assert offset == entry.size_bytes
        first, last = conn.execute(
            "SELECT min(event_time), max(event_time) FROM raw.events"
        ).fetchone()
    assert first >= datetime(2026, 11, 20) and last < datetime(2026, 11, 20, 3)
    assert report.hours == [datetime(2026, 11, 20, h) for h in range(3)]


def test_every_event_keeps_its_fields_and_position(project, sample):
    ingest_all(project)
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        row = conn.execute(
            """SELECT event_time, source, service, level, message, attrs->>'$.http.method', byte_offset
               FROM raw.events WHERE source = 'app' ORDER BY file_path, byte_offset LIMIT 1"""
        ).fetchone()
        nginx = conn.execute(
            "SELECT service, attrs->>'status' FROM raw.events WHERE source = 'nginx' LIMIT 1"
        ).fetchone()
    event_time, source, service, level, message, method, offset = row
    assert source == "app" and offset == 0
    assert event_time.year == 2026 and event_time.tzinfo is None
    assert service == "auth" and level in {"DEBUG", "INFO", "WARN", "ERROR"}
    assert message and method in {"GET", "POST", "PUT", "DELETE"}
    assert nginx[0] == "edge-proxy" and nginx[1].isdigit()


def test_appended_lines_are_the_only_ones_read_again(project, sample):
    ingest_all(project)
    target = project.logs_dir / "app" / "cart.jsonl"
    before = snapshot(project)
    extra = [
        f'{{"ts": "2026-11-20T03:00:0{i}.000Z", "level": "INFO", "msg": "late {i}"}}\n'
        for i in range(3)
    ]
    with target.open("a") as handle:
        handle.write("".join(extra) + '{"ts": "2026-11-20T03:00:09.000Z", "msg": "partial')
    report = ingest_all(project)
    assert report.total("lines") == 3 and report.total("events") == 3
    assert report.hours == [datetime(2026, 11, 20, 3)]
    after = snapshot(project)
    assert (
        after["events"][: len(before["events"])] != []
        and len(after["events"]) == len(before["events"]) + 3
    )
    assert set(before["events"]) <= set(after["events"])
    # The partial line waits for its newline, then is read once.
    with target.open("a") as handle:
        handle.write('"}\n')
    report = ingest_all(project)
    assert report.total("lines") == 1 and report.total("events") == 1


def test_running_again_changes_nothing(project, sample):
    ingest_all(project)
    first = snapshot(project)
    report = ingest_all(project)
    assert report.total("lines") == 0
    assert snapshot(project) == first


@pytest.mark.parametrize("crash_after_chunks", [1, 3])
def test_a_crash_between_chunks_then_a_rerun_equals_a_clean_run(
    project, sample, crash_after_chunks
):
    warehouse = project.config.warehouse.model_copy(update={"path": "warehouse/clean.duckdb"})
    clean = replace(project, config=project.config.model_copy(update={"warehouse": warehouse}))
    ingest_all(clean)

    commits = []

    def crash(result: FileResult) -> None:
        commits.append(result.end_offset)
        if len(commits) == crash_after_chunks:
            raise Crash

    with pytest.raises(Crash):
        ingest_all(project, after_commit=crash)
    partial = snapshot(project)
    assert 0 < len(partial["events"]) < len(snapshot(clean)["events"])
    ingest_all(project)
    assert snapshot(project) == snapshot(clean)
