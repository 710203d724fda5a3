"""Parsing SQL per source, run in DuckDB on real line batches: events, UTC times, reasons."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from loglens_pipeline.config.models import SourceConfig, TimestampSpec
from loglens_pipeline.defs.project import Project
from loglens_pipeline.ingest.lines import split_lines
from loglens_pipeline.ingest.parsers import OUTPUT_COLUMNS, field_columns, json_path, parse_sql


def parse(source: SourceConfig, *lines: str | bytes, crlf: bool = False) -> list[dict]:
    """Run the source's parsing statement over `lines` the way ingestion does, in UTC."""
    end = b"\r\n" if crlf else b"\n"
    data = b"".join((line.encode() if isinstance(line, str) else line) + end for line in lines)
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone='UTC'")
        conn.register("batch", split_lines(data, 0, 16 * 1024))
        cursor = conn.execute(f"SELECT * FROM ({parse_sql(source)}) ORDER BY byte_offset")
        names = tuple(d[0] for d in cursor.description)
        assert names == OUTPUT_COLUMNS + tuple(field_columns(source))
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def times(source: SourceConfig, *lines: str) -> list[datetime | None]:
    return [row["event_time"] for row in parse(source, *lines)]


def reasons(source: SourceConfig, *lines: str | bytes) -> list[str | None]:
    return [row["reason"] for row in parse(source, *lines)]


def json_source(timezone: str = "UTC", **kwargs) -> SourceConfig:
    return SourceConfig(
        name="custom", glob="custom/*.jsonl", format="json", timezone=timezone, **kwargs
    )


@pytest.fixture
def app(project: Project) -> SourceConfig:
    """The shipped JSON source: ts (iso8601), level, service, host, msg."""
    return project.config.source("app")


@pytest.fixture
def nginx(project: Project) -> SourceConfig:
    """The shipped nginx_combined source with `service: edge-proxy`."""
    return project.config.source("nginx")


# --- JSON lines (shipped `app` source) ------------------------------------------------------


def test_json_line_becomes_an_event_with_mapped_fields_and_all_attrs(app: SourceConfig) -> None:
    line = (
        '{"ts":"2026-11-25T13:00:00Z","level":"error","service":"checkout","host":"web-1",'
        '"msg":"payment failed","status":502,"latency_ms":12.5,'
        '"http":{"method":"POST","path":"/pay"}}'
    )
    [row] = parse(app, line)

    assert row["event_time"] == datetime(2026, 11, 25, 13, 0, 0)
    assert (row["service"], row["host"], row["level"], row["message"]) == (
        "checkout",
        "web-1",
        "ERROR",
        "payment failed",
    )
    assert (row["reason"], row["raw_line"], row["raw_bytes"]) == (None, None, None)
    attrs = json.loads(row["attrs"])
    assert attrs["http"]["method"] == "POST"
    assert attrs["http"]["path"] == "/pay"
    assert attrs["status"] == 502
    assert attrs["latency_ms"] == 12.5


def test_json_levels_are_upper_case_and_warning_becomes_warn(app: SourceConfig) -> None:
    levels = ["WARNING", "warning", "Warn", "info", "DEBUG"]
    lines = [f'{{"ts":"2026-11-25T13:00:00Z","level":"{level}"}}' for level in levels]
    assert [row["level"] for row in parse(app, *lines)] == ["WARN", "WARN", "WARN", "INFO", "DEBUG"]


def test_json_event_without_optional_fields_has_nulls(app: SourceConfig) -> None:
    [row] = parse(app, '{"ts":"2026-11-25T13:00:00Z"}')
    assert row["reason"] is None
    assert (row["service"], row["host"], row["level"], row["message"]) == (None,) * 4


def test_json_lines_that_cannot_be_events_are_quarantined_with_their_text(
    app: SourceConfig,
) -> None:
    lines = [
        '{"level":"INFO","msg":"no time"}',
        '{"ts":"yesterday at noon","msg":"x"}',
        '{"ts": 1795611600}',  # a number is not an iso8601 time
        '{"ts": null}',
        '{"ts":"2026-11-25T13:00:00Z"',
        "plain text",
        "",
        "   ",
        '["2026-11-25T13:00:00Z", "array"]',
        '"just a string"',
    ]
    rows = parse(app, *lines)

    assert [(row["reason"], row["raw_line"]) for row in rows] == [
        ("missing_timestamp", lines[0]),
        ("bad_timestamp", lines[1]),
        ("bad_timestamp", lines[2]),
        ("missing_timestamp", lines[3]),
        ("invalid_json", lines[4]),
        ("invalid_json", lines[5]),
        ("blank_line", ""),
        ("blank_line", "   "),
        ("missing_timestamp", lines[8]),
        ("missing_timestamp", lines[9]),
    ]
    assert all(row["event_time"] is None for row in rows)


def test_lines_rejected_before_parsing_keep_their_reason_and_bytes(app: SourceConfig) -> None:
    good = '{"ts":"2026-11-25T13:00:00Z","msg":"ok"}'
    rows = parse(app, b'{"ts":"2026-11-25T13:00:00Z","msg":"caf\xe9"}', b"a\x00b", good)

    assert [(r["byte_offset"], r["reason"], r["raw_bytes"]) for r in rows] == [
        (0, "invalid_utf8", b'{"ts":"2026-11-25T13:00:00Z","msg":"caf\xe9"}'),
        (43, "nul_byte", b"a\x00b"),
        (47, None, None),
    ]
    assert rows[0]["raw_line"] == '{"ts":"2026-11-25T13:00:00Z","msg":"caf\ufffd"}'
    assert rows[2]["message"] == "ok"


def test_crlf_json_lines_parse_like_lf_lines(app: SourceConfig) -> None:
    [row] = parse(app, '{"ts":"2026-11-25T13:00:00Z","msg":"windows"}', crlf=True)
    assert (row["reason"], row["message"]) == (None, "windows")


# --- ISO 8601 timestamps --------------------------------------------------------------------


def test_iso_timestamps_in_a_utc_source_are_read_as_utc(app: SourceConfig) -> None:
    values = [
        "2026-11-25T13:00:00Z",
        "2026-11-25T13:00:00+02:00",
        "2026-11-25T13:00:00.123456-05:00",
        "2026-11-25 13:00:00,123",
        "2026-11-25T13:00:00.5Z",
        "2026-11-25T13:00:00",
        "2026-11-25T00:30:00+01:00",
        "2026-11-25T13:00:00,25Z",  # a comma and Z: the direct TIMESTAMP cast refuses it
    ]
    assert times(app, *[f'{{"ts":"{value}"}}' for value in values]) == [
        datetime(2026, 11, 25, 13, 0, 0),
        datetime(2026, 11, 25, 11, 0, 0),
        datetime(2026, 11, 25, 18, 0, 0, 123456),
        datetime(2026, 11, 25, 13, 0, 0, 123000),
        datetime(2026, 11, 25, 13, 0, 0, 500000),
        datetime(2026, 11, 25, 13, 0, 0),
        datetime(2026, 11, 24, 23, 30, 0),
        datetime(2026, 11, 25, 13, 0, 0, 250000),
    ]


def test_naive_iso_times_are_local_to_the_source_time_zone_and_offsets_win() -> None:
    berlin = json_source("Europe/Berlin")
    values = [
        "2026-01-15T13:00:00",  # winter, CET = UTC+1
        "2026-07-15T13:00:00",  # summer, CEST = UTC+2
        "2026-07-15 13:00:00,250",  # comma milliseconds, summer
        "2026-07-15T13:00:00Z",
        "2026-07-15T13:00:00+05:30",
        "2026-07-15T13:00:00-0300",
        "2026-01-15T13:00:00-03",
    ]
    assert times(berlin, *[f'{{"ts":"{value}"}}' for value in values]) == [
        datetime(2026, 1, 15, 12, 0, 0),
        datetime(2026, 7, 15, 11, 0, 0),
        datetime(2026, 7, 15, 11, 0, 0, 250000),
        datetime(2026, 7, 15, 13, 0, 0),
        datetime(2026, 7, 15, 7, 30, 0),
        datetime(2026, 7, 15, 16, 0, 0),
        datetime(2026, 1, 15, 16, 0, 0),
    ]


def test_date_only_iso_value_is_local_midnight_in_a_non_utc_source() -> None:
    berlin = json_source("Europe/Berlin")
    assert times(berlin, '{"ts":"2026-07-15"}') == [datetime(2026, 7, 14, 22, 0, 0)]


def test_date_only_iso_value_is_midnight_in_a_utc_source(app: SourceConfig) -> None:
    assert times(app, '{"ts":"2026-07-15"}') == [datetime(2026, 7, 15, 0, 0, 0)]


# --- epoch and strptime timestamps ----------------------------------------------------------


def test_epoch_seconds_are_absolute_utc_times() -> None:
    source = json_source(timestamp=TimestampSpec(field="t", format="epoch_s"))
    lines = ['{"t":1795611600}', '{"t":"1795611600.25"}', '{"t":0}', '{"t":"soon"}']
    rows = parse(source, *lines)

    assert [row["event_time"] for row in rows] == [
        datetime(2026, 11, 25, 13, 0, 0),
        datetime(2026, 11, 25, 13, 0, 0, 250000),
        datetime(1970, 1, 1, 0, 0, 0),
        None,
    ]
    assert [row["reason"] for row in rows] == [None, None, None, "bad_timestamp"]


def test_epoch_milliseconds_keep_their_milliseconds_whatever_the_source_zone() -> None:
    for zone in ("UTC", "Europe/Berlin"):
        source = json_source(zone, timestamp=TimestampSpec(field="t", format="epoch_ms"))
        assert times(source, '{"t":1795611600123}', '{"t":"1784120400999"}') == [
            datetime(2026, 11, 25, 13, 0, 0, 123000),
            datetime(2026, 7, 15, 13, 0, 0, 999000),
        ]


def strptime_source(zone: str) -> SourceConfig:
    return SourceConfig(
        name="german",
        glob="german/*.log",
        format="regex",
        pattern=r"^(?P<ts>\S+ \S+) (?P<message>.*)$",
        mapping={"message": "message"},
        timestamp=TimestampSpec(field="ts", format="%d.%m.%Y %H:%M:%S"),
        timezone=zone,
    )


def test_strptime_format_without_offset_is_local_time_of_the_source() -> None:
    lines = ["25.11.2026 13:00:00 winter", "15.07.2026 13:00:00 summer", "32.11.2026 13:00:00 x"]

    berlin = parse(strptime_source("Europe/Berlin"), *lines)
    new_york = parse(strptime_source("America/New_York"), *lines)
    utc = parse(strptime_source("UTC"), *lines)

    assert [row["event_time"] for row in berlin] == [
        datetime(2026, 11, 25, 12, 0, 0),
        datetime(2026, 7, 15, 11, 0, 0),
        None,
    ]
    assert [row["event_time"] for row in new_york] == [
        datetime(2026, 11, 25, 18, 0, 0),
        datetime(2026, 7, 15, 17, 0, 0),
        None,
    ]
    assert [row["event_time"] for row in utc] == [
        datetime(2026, 11, 25, 13, 0, 0),
        datetime(2026, 7, 15, 13, 0, 0),
        None,
    ]
    assert [row["reason"] for row in berlin] == [None, None, "bad_timestamp"]
    assert [row["message"] for row in berlin][:2] == ["winter", "summer"]


# --- nginx_combined preset (shipped `nginx` source) -----------------------------------------


def test_nginx_access_line_becomes_an_event_with_request_status_and_utc_time(
    nginx: SourceConfig,
) -> None:
    line = (
        '10.1.2.3 - bob [25/Nov/2026:13:00:00 +0100] "GET /api/cart?id=7 HTTP/1.1" 404 512 '
        '"https://shop.example/" "Mozilla/5.0 (X11; Linux)"'
    )
    [row] = parse(nginx, line)

    assert row["reason"] is None
    assert row["event_time"] == datetime(2026, 11, 25, 12, 0, 0)
    assert row["message"] == "GET /api/cart?id=7 HTTP/1.1"
    assert row["service"] == "edge-proxy"
    assert (row["host"], row["level"]) == (None, None)
    assert json.loads(row["attrs"]) == {
        "remote_addr": "10.1.2.3",
        "remote_user": "bob",
        "time_local": "25/Nov/2026:13:00:00 +0100",
        "request": "GET /api/cart?id=7 HTTP/1.1",
        "method": "GET",
        "path": "/api/cart?id=7",
        "status": "404",
        "body_bytes_sent": "512",
        "http_referer": "https://shop.example/",
        "http_user_agent": "Mozilla/5.0 (X11; Linux)",
    }


def test_nginx_offsets_of_any_sign_are_converted_to_utc(nginx: SourceConfig) -> None:
    template = '10.0.0.1 - - [{}] "POST /x HTTP/2.0" 201 - "-" "curl/8.5"'
    stamps = [
        "25/Nov/2026:13:00:00 +0000",
        "25/Nov/2026:13:00:00 -0530",
        "01/Jan/2026:00:30:00 +0100",
    ]
    rows = parse(nginx, *[template.format(stamp) for stamp in stamps], crlf=True)

    assert [row["event_time"] for row in rows] == [
        datetime(2026, 11, 25, 13, 0, 0),
        datetime(2026, 11, 25, 18, 30, 0),
        datetime(2025, 12, 31, 23, 30, 0),
    ]
    # `-` is no byte count: NULL, so a typed int field never fails to cast on it.
    assert [json.loads(row["attrs"])["body_bytes_sent"] for row in rows] == [None, None, None]


def test_line_not_matching_the_nginx_layout_is_quarantined_with_its_text(
    nginx: SourceConfig,
) -> None:
    lines = [
        "2026/11/25 13:00:00 [error] 12#12: upstream timed out",
        '10.1.2.3 - - [25/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1" 2000 1 "-" "-"',
        "",
        '10.1.2.3 - - [25/Nov/2026:99:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
    ]
    rows = parse(nginx, *lines)

    assert [(row["reason"], row["raw_line"]) for row in rows] == [
        ("no_match", lines[0]),
        ("no_match", lines[1]),
        ("blank_line", ""),
        ("bad_timestamp", lines[3]),
    ]
    assert rows[0]["attrs"] is None


# --- level_text preset ----------------------------------------------------------------------


def level_text(service: str | None = None) -> SourceConfig:
    return SourceConfig(name="worker", glob="worker/*.log", format="level_text", service=service)


def test_level_text_line_gives_time_level_service_and_message() -> None:
    [row] = parse(level_text(), "2026-11-25 13:00:00,123 ERROR [payments] charge failed")

    assert row["reason"] is None
    assert row["event_time"] == datetime(2026, 11, 25, 13, 0, 0, 123000)
    assert (row["level"], row["service"], row["message"]) == ("ERROR", "payments", "charge failed")
    assert json.loads(row["attrs"]) == {
        "ts": "2026-11-25 13:00:00,123",
        "level": "ERROR",
        "service": "payments",
        "message": "charge failed",
    }


def test_level_text_without_a_service_uses_the_source_service_as_fallback() -> None:
    lines = [
        "2026-11-25T13:00:00+01:00 warning cache cold",
        "2026-11-25 13:00:00.5 INFO [api] ok",
        "not a log line",
    ]
    plain = parse(level_text(), *lines)
    with_default = parse(level_text(service="billing"), *lines)

    assert [(r["event_time"], r["level"], r["service"], r["message"]) for r in plain[:2]] == [
        (datetime(2026, 11, 25, 12, 0, 0), "WARN", None, "cache cold"),
        (datetime(2026, 11, 25, 13, 0, 0, 500000), "INFO", "api", "ok"),
    ]
    assert [r["service"] for r in with_default[:2]] == ["billing", "api"]
    assert [r["reason"] for r in plain] == [None, None, "no_match"]
    assert plain[2]["raw_line"] == "not a log line"


# --- custom regex ---------------------------------------------------------------------------


def test_custom_regex_with_unnamed_groups_fills_named_fields_correctly() -> None:
    source = SourceConfig(
        name="legacy",
        glob="legacy/*.log",
        format="regex",
        pattern=(
            r"^(\d+) (?P<ts>\S+) (GET|POST) (?P<level>[A-Z]+) (?:x|y)(z)? "
            r"(?P<host>[a-z0-9-]*) (?P<message>.*)$"
        ),
        mapping={"level": "level", "host": "host", "message": "message"},
        service="legacy-app",
    )
    lines = [
        "42 2026-11-25T13:00:00Z POST INFO xz web-7 hello world",
        "7 2026-11-25T14:30:00+01:00 GET WARNING y  bye",
        "42 2026-11-25T13:00:00Z PUT INFO y web-7 nope",
    ]
    rows = parse(source, *lines)

    assert [
        (r["event_time"], r["level"], r["host"], r["service"], r["message"]) for r in rows[:2]
    ] == [
        (datetime(2026, 11, 25, 13, 0, 0), "INFO", "web-7", "legacy-app", "hello world"),
        (datetime(2026, 11, 25, 13, 30, 0), "WARN", None, "legacy-app", "bye"),
    ]
    assert json.loads(rows[0]["attrs"]) == {
        "ts": "2026-11-25T13:00:00Z",
        "level": "INFO",
        "host": "web-7",
        "message": "hello world",
    }
    assert json.loads(rows[1]["attrs"])["host"] is None  # an empty capture is NULL
    assert (rows[2]["reason"], rows[2]["raw_line"]) == ("no_match", lines[2])


def test_custom_regex_is_searched_anywhere_in_the_line_unless_anchored() -> None:
    source = SourceConfig(
        name="embedded",
        glob="embedded/*.log",
        format="regex",
        pattern=r"at=(?P<ts>\S+) msg=(?P<message>\w+)",
        mapping={"message": "message"},
    )
    rows = parse(source, "prefix noise at=2026-11-25T13:00:00Z msg=done trailing", "msg=only")

    assert [(r["event_time"], r["message"], r["reason"]) for r in rows] == [
        (datetime(2026, 11, 25, 13, 0, 0), "done", None),
        (None, None, "no_match"),
    ]


# --- typed fields checked at ingest ---------------------------------------------------------


def test_json_path_quotes_each_key_and_keeps_ready_json_paths() -> None:
    assert json_path("http.status") == '$."http"."status"'
    assert json_path('we"ird') == '$."we\\"ird"'
    assert json_path('$."http.method"') == '$."http.method"'


def test_quarantine_setting_changes_nothing_for_lines_whose_fields_cast(app: SourceConfig) -> None:
    strict = SourceConfig(**{**app.model_dump(exclude_none=True), "on_cast_error": "quarantine"})
    lines = [
        '{"ts":"2026-11-25T13:00:00Z","level":"info","status":200,"latency_ms":"12.5","msg":"a"}',
        '{"ts":"2026-11-25T13:00:00Z","status":"502","http":{"method":"POST"}}',
        '{"ts":"2026-11-25T13:00:00Z","latency_ms":null}',
        "not json",
    ]
    assert parse(strict, *lines) == parse(app, *lines)
    assert [r["reason"] for r in parse(strict, '{"ts":"2026-11-25T13:00:00Z","status":"5xx"}')] == [
        "bad_field:status"
    ]


def test_shipped_sources_keep_cast_errors_by_default(
    app: SourceConfig, nginx: SourceConfig
) -> None:
    assert (app.on_cast_error, nginx.on_cast_error) == ("keep", "keep")
    [row] = parse(app, '{"ts":"2026-11-25T13:00:00Z","status":"abc","latency_ms":"fast"}')
    assert row["reason"] is None
    assert json.loads(row["attrs"])["status"] == "abc"
    assert app.field_paths() == {name: name for name in app.field_types()}
