"""Multiline events: stack traces join their first line, never split across commits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loglens_pipeline.ingest.discovery import source_files
from loglens_pipeline.ingest.identity import stat_file
from loglens_pipeline.ingest.ingestor import ingest_files
from loglens_pipeline.warehouse.connection import connect
from loglens_pipeline.warehouse.schema import ensure_raw_schema
from loglens_pipeline_tests.conftest import write_project

JAVA = (
    "2026-11-20 10:00:01,100 ERROR [payments] charge failed\n"
    "java.lang.IllegalStateException: card declined\n"
    "\tat com.shop.Payments.charge(Payments.java:42)\n"
    "\tat com.shop.Checkout.run(Checkout.java:17)\n"
)
PYTHON = (
    "2026-11-20 10:00:02,200 ERROR [cart] unhandled error\n"
    "Traceback (most recent call last):\n"
    '  File "cart.py", line 9, in add\n'
    "KeyError: 'sku'\n"
)
PLAIN = "2026-11-20 10:00:03,300 INFO [cart] item added\n"


def multiline_source(chunk_bytes: int = 4096, max_lines: int = 50):
    def change(data: dict) -> None:
        data["ingest"].update(chunk_bytes=chunk_bytes, max_line_bytes=1024)
        data["sources"].append(
            {
                "name": "java",
                "glob": "java/*.log",
                "format": "level_text",
                "multiline": {
                    "start": r"^\d{4}-\d\d-\d\d ",
                    "max_lines": max_lines,
                    "timeout_seconds": 5,
                },
            }
        )

    return change


def ingest(project, now: datetime):
    source = project.config.source("java")
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [(source, stat_file(p, source.name)) for p in source_files(project.logs_dir, source)]
        return ingest_files(conn, work, project.config.ingest, ingested_at=now)


def rows(project, sql: str) -> list[tuple]:
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        return conn.execute(sql).fetchall()


def idle(path) -> datetime:
    """A time at which the file has been idle longer than the multiline timeout."""
    return datetime.utcfromtimestamp(path.stat().st_mtime) + timedelta(seconds=6)


@pytest.fixture
def java(tmp_path):
    project = write_project(tmp_path, multiline_source())
    (project.logs_dir / "java").mkdir(parents=True)
    return project


def test_stack_traces_become_one_event_each(java):
    log = java.logs_dir / "java" / "app.log"
    log.write_text(JAVA + PYTHON + PLAIN)
    report = ingest(java, idle(log))
    assert report.total("lines") == 9
    events = rows(
        java, "SELECT level, service, message, line_count FROM raw.events ORDER BY byte_offset"
    )
    assert events == [
        ("ERROR", "payments", JAVA.split("] ", 1)[1].rstrip("\n"), 4),
        ("ERROR", "cart", PYTHON.split("] ", 1)[1].rstrip("\n"), 4),
        ("INFO", "cart", "item added", 1),
    ]
    assert rows(java, "SELECT lines, events, quarantined FROM raw.file_offsets") == [(9, 3, 0)]


def test_the_last_event_waits_for_more_lines_until_the_file_is_idle(java):
    log = java.logs_dir / "java" / "app.log"
    head, tail = JAVA.split("\tat com.shop.Checkout")
    log.write_text(PLAIN + head)
    just_written = datetime.utcfromtimestamp(log.stat().st_mtime)
    ingest(java, just_written)
    assert rows(java, "SELECT message FROM raw.events") == [("item added",)]
    with log.open("a") as handle:  # the trace goes on after the first run
        handle.write("\tat com.shop.Checkout" + tail)
    ingest(java, idle(log))
    messages = rows(java, "SELECT message, line_count FROM raw.events ORDER BY byte_offset")
    assert messages[1] == (JAVA.split("] ", 1)[1].rstrip("\n"), 4)


def test_an_event_is_never_split_across_chunks(tmp_path):
    project = write_project(tmp_path, multiline_source(chunk_bytes=4096))
    folder = project.logs_dir / "java"
    folder.mkdir(parents=True)
    log = folder / "app.log"
    frames = "".join(f"\tat com.shop.Frame{i}.call(Frame.java:{i})\n" for i in range(40))
    events = 40
    with log.open("w") as handle:
        for i in range(events):
            handle.write(f"2026-11-20 10:{i:02d}:00,000 ERROR [payments] failure {i}\n{frames}")
    report = ingest(project, idle(log))
    assert report.files[0].chunks >= 15, "the file spans many chunks"
    got = rows(project, "SELECT count(*), min(line_count), max(line_count) FROM raw.events")
    assert got == [(events, 41, 41)]
    assert rows(project, "SELECT count(*) FROM raw.quarantine") == [(0,)]


def test_events_longer_than_max_lines_keep_the_overflow_in_quarantine(tmp_path):
    project = write_project(tmp_path, multiline_source(max_lines=3))
    (project.logs_dir / "java").mkdir(parents=True)
    log = project.logs_dir / "java" / "app.log"
    log.write_text(JAVA + PLAIN)  # JAVA has 4 lines: 3 in the event, 1 overflow
    ingest(project, idle(log))
    assert rows(project, "SELECT line_count FROM raw.events ORDER BY byte_offset") == [(3,), (1,)]
    assert rows(project, "SELECT reason, raw_line, line_count FROM raw.quarantine") == [
        ("multiline_overflow", "\tat com.shop.Checkout.run(Checkout.java:17)", 1)
    ]
    lines = rows(
        project,
        "SELECT (SELECT sum(line_count) FROM raw.events) + (SELECT sum(line_count) FROM raw.quarantine)",
    )
    assert lines == [(5,)]


def test_continuation_lines_without_a_first_line_are_quarantined_whole(java):
    log = java.logs_dir / "java" / "app.log"
    log.write_text("\tat orphan.Frame(A.java:1)\n\tat orphan.Frame(B.java:2)\n" + PLAIN)
    ingest(java, idle(log))
    assert rows(java, "SELECT reason, raw_line, line_count FROM raw.quarantine") == [
        ("no_match", "\tat orphan.Frame(A.java:1)\n\tat orphan.Frame(B.java:2)", 2)
    ]
    assert rows(java, "SELECT message FROM raw.events") == [("item added",)]
