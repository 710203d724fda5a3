"""A fixed parser config re-processes quarantined lines: moved to events, never duplicated."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.runs import run_ingest, run_replay
from loglens_pipeline_tests.conftest import query, write_project

LINES = (
    "2026-11-20 10:00:01 ERROR [payments] card declined\n"
    "2026/11/20 10:00:02 WARN [payments] slow gateway\n"  # a date layout the first config lacks
    "2026/11/20 10:00:03 INFO [cart] added item\n"
    "complete garbage\n"
)


def text_source(pattern: str):
    def change(data: dict) -> None:
        data["sources"].append(
            {
                "name": "text",
                "glob": "text/*.log",
                "format": "regex",
                "pattern": pattern,
                "timestamp": {"field": "ts", "format": "iso8601"},
                "mapping": {"level": "level", "service": "service", "message": "message"},
            }
        )

    return change


STRICT = r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<level>[A-Z]+) \[(?P<service>\w+)\] (?P<message>.*)$"
FIXED = r"^(?P<ts>\d{4}[-/]\d\d[-/]\d\d \d\d:\d\d:\d\d) (?P<level>[A-Z]+) \[(?P<service>\w+)\] (?P<message>.*)$"


def test_replay_moves_lines_the_fixed_parser_accepts(tmp_path, instance):
    project = write_project(tmp_path, text_source(STRICT))
    (project.logs_dir / "text").mkdir(parents=True)
    (project.logs_dir / "text" / "a.log").write_text(LINES)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    assert query(project, "SELECT count(*) FROM raw.quarantine WHERE source = 'text'") == [(3,)]

    fixed_config = write_project(tmp_path / "fixed", text_source(FIXED)).config
    fixed = replace(project, config=fixed_config)
    for _ in range(2):  # a second replay finds nothing more to move
        assert run_replay(build_definitions(fixed), instance, ["text"], trigger="test").success
    assert query(project, "SELECT reason, raw_line FROM raw.quarantine WHERE source = 'text'") == [
        ("no_match", "complete garbage")
    ]
    assert query(
        project,
        "SELECT count(*), count(DISTINCT byte_offset) FROM raw.events WHERE source = 'text'",
    ) == [(3, 3)]


def test_replay_with_a_fixed_timestamp_format_keeps_file_positions(tmp_path, instance):
    slash_pattern = FIXED.replace(
        r"(?P<ts>\d{4}[-/]\d\d[-/]\d\d \d\d:\d\d:\d\d)", r"(?P<ts>\S+ \S+)"
    )
    project = write_project(tmp_path, text_source(STRICT))
    (project.logs_dir / "text").mkdir(parents=True)
    (project.logs_dir / "text" / "a.log").write_text(LINES)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success

    def strptime_source(data: dict) -> None:
        text_source(slash_pattern)(data)
        data["sources"][-1]["timestamp"] = {"field": "ts", "format": "%Y/%m/%d %H:%M:%S"}

    fixed = replace(project, config=write_project(tmp_path / "fixed", strptime_source).config)
    for _ in range(2):  # replaying twice moves nothing the second time
        assert run_replay(build_definitions(fixed), instance, [], trigger="test").success
    events = query(
        project,
        "SELECT event_time, level, service, byte_offset FROM raw.events WHERE source = 'text' ORDER BY 4",
    )
    assert events == [
        (datetime(2026, 11, 20, 10, 0, 1), "ERROR", "payments", 0),
        (datetime(2026, 11, 20, 10, 0, 2), "WARN", "payments", 51),
        (datetime(2026, 11, 20, 10, 0, 3), "INFO", "cart", 100),
    ]
    assert query(project, "SELECT reason FROM raw.quarantine WHERE source = 'text'") == [
        ("no_match",)
    ]
    assert query(
        project, "SELECT lines, events, quarantined FROM raw.file_offsets WHERE source = 'text'"
    ) == [(4, 3, 1)]
