"""Every format and preset on real-looking lines: literal events, reasons, timestamps, fields.

Each test runs the source's parsing SQL in an in-memory DuckDB (UTC session) over lines split
exactly as ingestion splits them. `syslog` timestamps carry no year; tests pin the reference
time (`parsers.NOW_SQL`) so the expected datetimes are literals.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from pydantic import ValidationError

from loglens_pipeline.config import ConfigError
from loglens_pipeline.config.models import SourceConfig, TimestampSpec
from loglens_pipeline.ingest import parsers
from loglens_pipeline.ingest.formats import PRESETS, RegexPreset, json_path, known_formats
from loglens_pipeline.ingest.lines import split_lines
from loglens_pipeline.ingest.parsers import OUTPUT_COLUMNS, field_columns, parse_sql
from loglens_pipeline_tests.conftest import write_project


def parse(source: SourceConfig, *lines: str | bytes) -> list[dict]:
    """Run the source's parsing statement over `lines` the way ingestion does, in UTC."""
    data = b"".join((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines)
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone='UTC'")
        conn.register("batch", split_lines(data, 0, 1 << 20))
        cursor = conn.execute(f"SELECT * FROM ({parse_sql(source)}) ORDER BY byte_offset")
        names = tuple(d[0] for d in cursor.description)
        assert names == OUTPUT_COLUMNS + tuple(field_columns(source))
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def event(row: dict) -> tuple:
    """The canonical columns of a parsed row, for one literal comparison."""
    return (row["event_time"], row["service"], row["host"], row["level"], row["message"])


def reasons(source: SourceConfig, *lines: str | bytes) -> list[str | None]:
    return [row["reason"] for row in parse(source, *lines)]


def source(format: str, **kwargs) -> SourceConfig:
    return SourceConfig(name="src", glob="src/*.log", format=format, **kwargs)


@pytest.fixture
def now_2026_11_25(monkeypatch: pytest.MonkeyPatch) -> None:
    """`syslog` timestamps are placed relative to 2026-11-25 12:00 UTC."""
    monkeypatch.setattr(parsers, "NOW_SQL", "TIMESTAMPTZ '2026-11-25 12:00:00+00'")


# --- logfmt ---------------------------------------------------------------------------------


def test_logfmt_line_becomes_an_event_with_every_pair_in_attrs() -> None:
    line = 'ts=2026-11-25T13:00:00Z level=info service=cart msg="GET /api done" status=200 latency_ms=12.5'
    [row] = parse(source("logfmt"), line)

    assert row["reason"] is None
    assert event(row) == (datetime(2026, 11, 25, 13, 0, 0), "cart", None, "INFO", "GET /api done")
    assert (row["raw_line"], row["raw_bytes"]) == (None, None)
    assert json.loads(row["attrs"]) == {
        "ts": "2026-11-25T13:00:00Z",
        "level": "info",
        "service": "cart",
        "msg": "GET /api done",
        "status": "200",
        "latency_ms": "12.5",
    }
    assert list(json.loads(row["attrs"])) == [
        "ts",
        "level",
        "service",
        "msg",
        "status",
        "latency_ms",
    ]


def test_logfmt_quoting_escapes_bare_keys_empty_values_and_repeated_keys() -> None:
    line = (
        r'ts=2026-11-25T13:00:00Z msg="say \"hi\" to C:\\temp" dry_run url=/a?b=c&d=e '
        r'empty= quoted_empty="" retry=1 retry=2 unicode="héllo wörld" "orphan" half="open'
    )
    [row] = parse(source("logfmt"), line)

    assert row["reason"] is None
    assert row["message"] == r'say "hi" to C:\temp'
    assert json.loads(row["attrs"]) == {
        "ts": "2026-11-25T13:00:00Z",
        "msg": r'say "hi" to C:\temp',
        "dry_run": "true",  # a bare key is a flag
        "url": "/a?b=c&d=e",  # `=` inside a value is kept
        "empty": "",
        "quoted_empty": "",
        "retry": "1",  # a repeated key keeps its first value
        "unicode": "héllo wörld",
        "orphan": "true",  # a quoted word without key: its text is a bare key
        "half": '"open',  # an unterminated quote is a bare value
    }


def test_logfmt_empty_mapped_values_are_null_and_mapping_keys_are_whole() -> None:
    logrus = source(
        "logfmt",
        timestamp=TimestampSpec(field="time", format="epoch_ms"),
        mapping={"level": "lvl", "message": "message", "host": "k8s.node"},
        service="billing",
    )
    rows = parse(
        logrus,
        "time=1795611600123 lvl=WARNING message=cold k8s.node=node-3",
        'time=1795611600000 lvl= message="" service=api',
    )

    assert [event(row) for row in rows] == [
        (datetime(2026, 11, 25, 13, 0, 0, 123000), "billing", "node-3", "WARN", "cold"),
        (datetime(2026, 11, 25, 13, 0, 0), "billing", None, None, None),
    ]


def test_logfmt_lines_that_cannot_be_events_get_their_reason() -> None:
    lines: list[str | bytes] = [
        "just a sentence without pairs",
        '"only a quoted string"',
        "",
        "   ",
        "level=info msg=no-time",
        "ts=yesterday msg=late",
        "ts= msg=empty-time",
        b"ts=2026-11-25T13:00:00Z msg=caf\xe9",
        "ts=2026-11-25T13:00:00Z",
    ]
    rows = parse(source("logfmt"), *lines)

    assert [(row["reason"], row["raw_line"]) for row in rows] == [
        ("no_match", lines[0]),
        ("no_match", lines[1]),
        ("blank_line", ""),
        ("blank_line", "   "),
        ("missing_timestamp", lines[4]),
        ("bad_timestamp", lines[5]),
        ("missing_timestamp", lines[6]),
        ("invalid_utf8", "ts=2026-11-25T13:00:00Z msg=caf\ufffd"),
        (None, None),
    ]
    assert rows[0]["attrs"] is None
    assert rows[7]["raw_bytes"] == lines[7]


def test_logfmt_crlf_and_tabs_between_pairs() -> None:
    data_source = source("logfmt")
    rows = parse(data_source, "ts=2026-11-25T13:00:00Z\tlevel=error\t msg=tabbed\r")
    assert event(rows[0]) == (datetime(2026, 11, 25, 13, 0, 0), None, None, "ERROR", "tabbed")


# --- access log presets ---------------------------------------------------------------------

COMMON_LINE = (
    '10.1.2.3 - alice [25/Nov/2026:13:00:00 +0100] "GET /index.html?x=1 HTTP/1.1" 200 2326'
)
COMBINED_LINE = (
    '10.1.2.3 - - [25/Nov/2026:13:00:00 -0500] "POST /api/cart HTTP/2.0" 201 512 '
    '"https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)"'
)


@pytest.mark.parametrize("preset", ["nginx_common", "apache_common"])
def test_common_log_format_line(preset: str) -> None:
    [row] = parse(source(preset, service="web"), COMMON_LINE)

    assert row["reason"] is None
    assert event(row) == (
        datetime(2026, 11, 25, 12, 0, 0),
        "web",
        None,
        None,
        "GET /index.html?x=1 HTTP/1.1",
    )
    assert json.loads(row["attrs"]) == {
        "remote_addr": "10.1.2.3",
        "remote_user": "alice",
        "time_local": "25/Nov/2026:13:00:00 +0100",
        "request": "GET /index.html?x=1 HTTP/1.1",
        "method": "GET",
        "path": "/index.html?x=1",
        "status": "200",
        "body_bytes_sent": "2326",
    }


@pytest.mark.parametrize("preset", ["nginx_common", "apache_common"])
def test_common_log_format_rejects_other_layouts(preset: str) -> None:
    lines = [
        COMBINED_LINE,  # the combined layout has more after the byte count
        '10.1.2.3 - - [25/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1" 20 1',
        '10.1.2.3 - - [31/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1" 200 1',
        '10.1.2.3 - - [25/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1" 304 -',
        "",
    ]
    rows = parse(source(preset), *lines)

    assert [row["reason"] for row in rows] == [
        "no_match",
        "no_match",
        "bad_timestamp",
        None,
        "blank_line",
    ]
    assert json.loads(rows[3]["attrs"])["body_bytes_sent"] is None


@pytest.mark.parametrize("preset", ["nginx_combined", "apache_combined"])
def test_combined_log_format_line(preset: str) -> None:
    [row] = parse(source(preset), COMBINED_LINE)

    assert event(row) == (
        datetime(2026, 11, 25, 18, 0, 0),
        None,
        None,
        None,
        "POST /api/cart HTTP/2.0",
    )
    assert json.loads(row["attrs"]) == {
        "remote_addr": "10.1.2.3",
        "remote_user": "-",
        "time_local": "25/Nov/2026:13:00:00 -0500",
        "request": "POST /api/cart HTTP/2.0",
        "method": "POST",
        "path": "/api/cart",
        "status": "201",
        "body_bytes_sent": "512",
        "http_referer": "https://shop.example/",
        "http_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    assert reasons(source(preset), COMMON_LINE, "GET / HTTP/1.1") == ["no_match", "no_match"]


def test_apache_combined_is_the_nginx_combined_layout() -> None:
    nginx, apache = PRESETS["nginx_combined"], PRESETS["apache_combined"]
    assert (apache.pattern, apache.timestamp_format, apache.fields) == (
        nginx.pattern,
        nginx.timestamp_format,
        nginx.fields,
    )


# --- syslog RFC 3164 ------------------------------------------------------------------------


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_rfc3164_line_with_pri() -> None:
    [row] = parse(
        source("syslog_rfc3164"), "<34>Nov 25 11:59:00 web-1 sshd[4721]: Failed password for root"
    )

    assert row["reason"] is None
    assert event(row) == (
        datetime(2026, 11, 25, 11, 59, 0),
        "sshd",
        "web-1",
        "ERROR",  # 34 = auth (4) * 8 + crit (2)
        "Failed password for root",
    )
    assert json.loads(row["attrs"]) == {
        "pri": "34",
        "timestamp": "Nov 25 11:59:00",
        "host": "web-1",
        "app": "sshd",
        "pid": "4721",
        "message": "Failed password for root",
    }


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_rfc3164_without_pri_tag_or_pid_and_with_a_padded_day() -> None:
    lines = [
        "Nov  5 08:07:06 db-2 kernel: Out of memory: Killed process 1234",
        "Nov 25 12:00:00 db-2 CRON[99]:no space after the colon",
        "Nov 25 12:00:00 db-2 a message without a tag: still kept",
    ]
    rows = parse(source("syslog_rfc3164"), *lines)

    assert [event(row) for row in rows] == [
        (
            datetime(2026, 11, 5, 8, 7, 6),
            "kernel",
            "db-2",
            None,
            "Out of memory: Killed process 1234",
        ),
        (datetime(2026, 11, 25, 12, 0, 0), "CRON", "db-2", None, "no space after the colon"),
        (
            datetime(2026, 11, 25, 12, 0, 0),
            None,
            "db-2",
            None,
            "a message without a tag: still kept",
        ),
    ]


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_year_is_this_year_unless_that_is_more_than_a_day_ahead() -> None:
    template = "<13>{} gw-1 app: tick"
    stamps = [
        "Nov 25 11:00:00",  # an hour ago
        "Nov 26 11:59:59",  # just under a day ahead: clock skew, still this year
        "Nov 26 12:00:01",  # more than a day ahead: last year
        "Dec 31 23:59:59",  # a December line read in the new year would be last year too
        "Jan  1 00:00:00",
    ]
    rows = parse(source("syslog_rfc3164"), *[template.format(stamp) for stamp in stamps])

    assert [row["event_time"] for row in rows] == [
        datetime(2026, 11, 25, 11, 0, 0),
        datetime(2026, 11, 26, 11, 59, 59),
        datetime(2025, 11, 26, 12, 0, 1),
        datetime(2025, 12, 31, 23, 59, 59),
        datetime(2026, 1, 1, 0, 0, 0),
    ]


def test_syslog_year_rolls_back_on_new_years_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsers, "NOW_SQL", "TIMESTAMPTZ '2027-01-01 00:00:05+00'")
    rows = parse(source("syslog_rfc3164"), "Dec 31 23:59:58 h a: x", "Jan  1 00:00:01 h a: y")
    assert [row["event_time"] for row in rows] == [
        datetime(2026, 12, 31, 23, 59, 58),
        datetime(2027, 1, 1, 0, 0, 1),
    ]


def test_syslog_feb_29_falls_back_to_the_last_leap_year(monkeypatch: pytest.MonkeyPatch) -> None:
    line = "Feb 29 10:00:00 h a: x"
    monkeypatch.setattr(parsers, "NOW_SQL", "TIMESTAMPTZ '2029-03-01 00:00:00+00'")
    assert [r["event_time"] for r in parse(source("syslog_rfc3164"), line)] == [
        datetime(2028, 2, 29, 10, 0, 0)
    ]
    monkeypatch.setattr(parsers, "NOW_SQL", "TIMESTAMPTZ '2027-03-01 00:00:00+00'")
    assert reasons(source("syslog_rfc3164"), line) == ["bad_timestamp"]  # 2027, 2026: no leap


def test_syslog_year_follows_the_real_clock_without_a_pinned_now() -> None:
    an_hour_ago = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(hours=1)
    line = f"<14>{an_hour_ago:%b} {an_hour_ago.day:2d} {an_hour_ago:%H:%M:%S} h app: x"
    assert [r["event_time"] for r in parse(source("syslog_rfc3164"), line)] == [an_hour_ago]


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_local_time_uses_the_source_time_zone() -> None:
    berlin = source("syslog_rfc3164", timezone="Europe/Berlin")
    rows = parse(berlin, "Nov 25 13:00:00 h a: winter", "Jul 15 13:00:00 h a: summer")
    assert [row["event_time"] for row in rows] == [
        datetime(2026, 11, 25, 12, 0, 0),
        datetime(2026, 7, 15, 11, 0, 0),
    ]


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_severity_becomes_the_level() -> None:
    # PRI = facility * 8 + severity; facility 1 (user) for 8..15, 23 (local7) for 184..191.
    pris = [8, 9, 10, 11, 12, 13, 14, 15, 191, 184]
    rows = parse(source("syslog_rfc3164"), *[f"<{p}>Nov 25 10:00:00 h a: x" for p in pris])
    assert [row["level"] for row in rows] == [
        "ERROR",  # emerg
        "ERROR",  # alert
        "ERROR",  # crit
        "ERROR",  # err
        "WARN",  # warning
        "INFO",  # notice
        "INFO",  # info
        "DEBUG",  # debug
        "DEBUG",
        "ERROR",
    ]


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_level_mapped_elsewhere_is_read_as_text() -> None:
    custom = source(
        "syslog_rfc3164", mapping={"level": "app", "message": "message", "host": "host"}
    )
    [row] = parse(custom, "<11>Nov 25 10:00:00 h warning: disk almost full")
    assert (row["level"], row["message"], row["service"]) == ("WARN", "disk almost full", None)


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_rfc3164_malformed_lines() -> None:
    lines = [
        "2026-11-25T13:00:00Z host app: iso time is not 3164",
        "<34>Nov 25 13:00 host app: no seconds",
        "<34>Nov 31 13:00:00 host app: no such day",
        "<34>Foo 25 13:00:00 host app: no such month",
        "Nov 25 13:00:00",
    ]
    assert reasons(source("syslog_rfc3164"), *lines) == [
        "no_match",
        "no_match",
        "bad_timestamp",
        "bad_timestamp",
        "no_match",
    ]


# --- syslog RFC 5424 ------------------------------------------------------------------------


def test_syslog_rfc5424_line_with_structured_data() -> None:
    line = (
        '<165>1 2026-11-25T13:00:00.123Z web-1 cart 4321 ID47 [origin ip="10.1.2.3"]'
        '[meta x="a\\]b"] order placed'
    )
    [row] = parse(source("syslog_rfc5424"), line)

    assert row["reason"] is None
    assert event(row) == (
        datetime(2026, 11, 25, 13, 0, 0, 123000),
        "cart",
        "web-1",
        "INFO",  # 165 = local4 (20) * 8 + notice (5)
        "order placed",
    )
    assert json.loads(row["attrs"]) == {
        "pri": "165",
        "version": "1",
        "timestamp": "2026-11-25T13:00:00.123Z",
        "host": "web-1",
        "app": "cart",
        "procid": "4321",
        "msgid": "ID47",
        "structured_data": '[origin ip="10.1.2.3"][meta x="a\\]b"]',
        "message": "order placed",
    }


def test_syslog_rfc5424_nil_values_are_null_and_offsets_become_utc() -> None:
    lines = [
        "<11>1 2026-11-25T13:00:00.5+01:00 - - - - -",
        "<12>1 2026-11-25T13:00:00-05:00 db-1 pg - - - \ufeffcheckpoint done",
        "<15>1 2026-11-25T13:00:00Z h app 1 - - message - with dashes",
    ]
    rows = parse(source("syslog_rfc5424"), *lines)

    assert [event(row) for row in rows] == [
        (datetime(2026, 11, 25, 12, 0, 0, 500000), None, None, "ERROR", None),
        (datetime(2026, 11, 25, 18, 0, 0), "pg", "db-1", "WARN", "checkpoint done"),
        (datetime(2026, 11, 25, 13, 0, 0), "app", "h", "DEBUG", "message - with dashes"),
    ]
    assert json.loads(rows[0]["attrs"])["structured_data"] is None
    assert json.loads(rows[1]["attrs"])["procid"] is None


def test_syslog_rfc5424_malformed_lines() -> None:
    lines = [
        "<34>Nov 25 13:00:00 host app: a 3164 line",
        "2026-11-25T13:00:00Z host app 1 - - no pri",
        "<34>1 - host app 1 - - no time",
        "<34>1 2026-13-45T13:00:00Z host app 1 - - bad time",
        "<34>1 2026-11-25T13:00:00Z host app 1 - [unclosed sd",
    ]
    assert reasons(source("syslog_rfc5424"), *lines) == [
        "no_match",
        "no_match",
        "missing_timestamp",
        "bad_timestamp",
        "no_match",
    ]


# --- level_text -----------------------------------------------------------------------------


def test_level_text_example_and_malformed_line() -> None:
    rows = parse(
        source("level_text"),
        "2026-11-25 13:00:00,123 ERROR [payments] charge failed: card declined",
        "ERROR [payments] no time",
        "2026-11-25 25:00:00 INFO bad hour",
    )
    assert event(rows[0]) == (
        datetime(2026, 11, 25, 13, 0, 0, 123000),
        "payments",
        None,
        "ERROR",
        "charge failed: card declined",
    )
    assert [row["reason"] for row in rows] == [None, "no_match", "bad_timestamp"]


# --- timestamp formats ----------------------------------------------------------------------


def stamped(format: str, zone: str = "UTC") -> SourceConfig:
    return source("json", timestamp=TimestampSpec(field="t", format=format), timezone=zone)


def test_epoch_microseconds_and_nanoseconds() -> None:
    us = parse(
        stamped("epoch_us"),
        '{"t":1795611600123456}',
        '{"t":"1795611600000001"}',
        '{"t":-1000000}',
        '{"t":"soon"}',
    )
    ns = parse(
        stamped("epoch_ns", "Europe/Berlin"),
        '{"t":1795611600123456789}',
        '{"t":"1784120400000000999"}',
        '{"t":99999999999999999999}',
    )

    assert [(r["event_time"], r["reason"]) for r in us] == [
        (datetime(2026, 11, 25, 13, 0, 0, 123456), None),
        (datetime(2026, 11, 25, 13, 0, 0, 1), None),
        (datetime(1969, 12, 31, 23, 59, 59), None),
        (None, "bad_timestamp"),
    ]
    assert [(r["event_time"], r["reason"]) for r in ns] == [
        (datetime(2026, 11, 25, 13, 0, 0, 123456), None),
        (datetime(2026, 7, 15, 13, 0, 0), None),
        (None, "bad_timestamp"),
    ]


@pytest.mark.parametrize(
    ("format", "value"),
    [
        ("epoch_s", "1e300"),
        ("epoch_s", '"inf"'),
        ("epoch_s", '"nan"'),
        ("epoch_ms", "-1e20"),
        ("epoch_us", "9223372036854775807"),
        ("epoch_ns", '"1e30"'),
    ],
)
def test_epoch_values_out_of_range_are_bad_timestamps_not_errors(format: str, value: str) -> None:
    rows = parse(stamped(format), f'{{"t":{value}}}', '{"t":1795611600}')
    assert rows[0]["reason"] == "bad_timestamp"
    assert rows[1]["reason"] is None


def test_strptime_with_an_offset_ignores_the_source_zone() -> None:
    spec = TimestampSpec(field="t", format="%d/%b/%Y:%H:%M:%S %z")
    for zone in ("UTC", "Asia/Tokyo"):
        clf = source("json", timestamp=spec, timezone=zone)
        rows = parse(clf, '{"t":"25/Nov/2026:13:00:00 +0530"}', '{"t":"25/Nov/2026:13:00:00"}')
        assert [(r["event_time"], r["reason"]) for r in rows] == [
            (datetime(2026, 11, 25, 7, 30, 0), None),
            (None, "bad_timestamp"),
        ]


def test_iso8601_offsets_and_fractions() -> None:
    rows = parse(
        stamped("iso8601", "America/New_York"),
        '{"t":"2026-11-25T13:00:00.123+09:00"}',
        '{"t":"2026-11-25T13:00:00"}',
        '{"t":"2026-11-25T13:00:00Z"}',
    )
    assert [r["event_time"] for r in rows] == [
        datetime(2026, 11, 25, 4, 0, 0, 123000),
        datetime(2026, 11, 25, 18, 0, 0),
        datetime(2026, 11, 25, 13, 0, 0),
    ]


@pytest.mark.usefixtures("now_2026_11_25")
def test_syslog_timestamp_format_in_a_custom_regex() -> None:
    custom = source(
        "regex",
        pattern=r"^\[(?P<ts>[A-Z][a-z]{2} +\d+ [\d:]+)\] (?P<message>.*)$",
        timestamp=TimestampSpec(field="ts", format="syslog"),
        mapping={"message": "message"},
        timezone="Asia/Kolkata",
    )
    rows = parse(custom, "[Nov  2 10:30:00] started", "[Nov 2 10:30] short")
    assert [(r["event_time"], r["reason"]) for r in rows] == [
        (datetime(2026, 11, 2, 5, 0, 0), None),
        (None, "bad_timestamp"),
    ]


# --- typed fields and on_cast_error ---------------------------------------------------------

TYPED = {
    "status": "int",
    "latency": {"path": "timing.latency_ms", "type": "float"},
    "cached": "bool",
    "deadline": "timestamp",
    "user": "string",
}


def typed_json(on_cast_error: str) -> SourceConfig:
    return source("json", fields=TYPED, on_cast_error=on_cast_error)


TYPED_LINES = [
    '{"ts":"2026-11-25T13:00:00Z","status":200,"timing":{"latency_ms":12.5},"cached":true,'
    '"deadline":"2026-11-25 14:00:00","user":123}',
    '{"ts":"2026-11-25T13:00:00Z","status":"abc"}',
    '{"ts":"2026-11-25T13:00:00Z","timing":{"latency_ms":"fast"}}',
    '{"ts":"2026-11-25T13:00:00Z","cached":"maybe"}',
    '{"ts":"2026-11-25T13:00:00Z","deadline":"tomorrow"}',
    '{"ts":"2026-11-25T13:00:00Z","status":null,"timing":{},"cached":"","deadline":""}',
    '{"ts":"2026-11-25T13:00:00Z","status":"abc","cached":"maybe"}',
    '{"ts":"nope","status":"abc"}',
    '{"ts":"2026-11-25T13:00:00Z","status":{"code":200}}',
]


def test_cast_errors_are_kept_by_default() -> None:
    assert reasons(typed_json("keep"), *TYPED_LINES) == [None] * 7 + ["bad_timestamp", None]


def test_cast_errors_quarantine_the_line_naming_the_first_bad_field() -> None:
    assert reasons(typed_json("quarantine"), *TYPED_LINES) == [
        None,
        "bad_field:status",
        "bad_field:latency",
        "bad_field:cached",
        "bad_field:deadline",
        None,  # absent, null and empty values are not cast errors
        "bad_field:status",  # fields are checked in declaration order
        "bad_timestamp",  # the time is checked first
        "bad_field:status",  # an object is no int
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("true", None),
        ("false", None),
        ("1", None),
        ("0", None),
        ('"TRUE"', None),
        ('"0"', None),
        ('"2"', "bad_field:flag"),
        ('"on"', "bad_field:flag"),
    ],
)
def test_bool_fields_cast_true_false_1_0(value: str, reason: str | None) -> None:
    flags = source("json", fields={"flag": "bool"}, on_cast_error="quarantine")
    assert reasons(flags, f'{{"ts":"2026-11-25T13:00:00Z","flag":{value}}}') == [reason]


def test_int_and_float_casts_accept_numbers_in_any_json_or_text_form() -> None:
    numbers = source("json", fields={"n": "int", "x": "float"}, on_cast_error="quarantine")
    lines = [
        '{"ts":"2026-11-25T13:00:00Z","n":"42","x":"1e-3"}',
        '{"ts":"2026-11-25T13:00:00Z","n":42.0,"x":-7}',
        '{"ts":"2026-11-25T13:00:00Z","n":"4 2"}',
        '{"ts":"2026-11-25T13:00:00Z","x":"1,5"}',
    ]
    assert reasons(numbers, *lines) == [None, None, "bad_field:n", "bad_field:x"]


def test_dotted_json_keys_are_reached_with_a_json_path() -> None:
    otel = source(
        "json",
        fields={
            "method": {"path": '$."http.request.method"', "type": "string"},
            "code": {"path": '$."http.response.status_code"', "type": "int"},
        },
        on_cast_error="quarantine",
    )
    rows = parse(
        otel,
        '{"ts":"2026-11-25T13:00:00Z","http.request.method":"GET","http.response.status_code":200}',
        '{"ts":"2026-11-25T13:00:00Z","http.response.status_code":"OK"}',
    )
    assert [row["reason"] for row in rows] == [None, "bad_field:code"]
    assert otel.field_paths() == {
        "method": '$."http.request.method"',
        "code": '$."http.response.status_code"',
    }
    assert json_path('$."http.request.method"') == '$."http.request.method"'


def test_logfmt_typed_fields_rename_and_quarantine() -> None:
    app = source(
        "logfmt",
        fields={"status": "int", "latency": {"path": "timing.latency_ms", "type": "float"}},
        on_cast_error="quarantine",
    )
    lines = [
        "ts=2026-11-25T13:00:00Z status=200 timing.latency_ms=12.5",
        "ts=2026-11-25T13:00:00Z status=200 timing.latency_ms=slow",
        'ts=2026-11-25T13:00:00Z status="five hundred"',
        "ts=2026-11-25T13:00:00Z status=",
    ]
    assert reasons(app, *lines) == [None, "bad_field:latency", "bad_field:status", None]
    assert app.field_types() == {"status": "int", "latency": "float"}
    assert app.field_paths() == {"status": "status", "latency": '$."timing.latency_ms"'}


def test_regex_and_preset_fields_are_checked_by_group() -> None:
    nginx = source(
        "nginx_combined",
        fields={"bytes": {"path": "body_bytes_sent", "type": "int"}},
        on_cast_error="quarantine",
    )
    template = '10.0.0.1 - - [25/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1" 200 {} "-" "curl"'
    assert reasons(nginx, template.format("512"), template.format("-")) == [None, None]
    assert nginx.field_types()["bytes"] == "int"
    assert nginx.field_paths()["bytes"] == "body_bytes_sent"
    assert nginx.field_paths()["status"] == "status"  # the preset's fields stay

    custom = source(
        "regex",
        pattern=r"^(?P<ts>\S+) took (?P<ms>\S+)ms$",
        mapping={},
        fields={"took": {"path": "ms", "type": "float"}},
        on_cast_error="quarantine",
    )
    lines = ["2026-11-25T13:00:00Z took 12.5ms", "2026-11-25T13:00:00Z took ?ms"]
    assert reasons(custom, *lines) == [None, "bad_field:took"]


def test_field_types_and_paths_merge_preset_and_source_fields() -> None:
    syslog = source("syslog_rfc5424", fields={"procid": "int", "svc": {"path": "app"}})
    assert syslog.field_types() == {
        "app": "string",
        "procid": "int",
        "msgid": "string",
        "svc": "string",
    }
    assert syslog.field_paths() == {
        "app": "app",
        "procid": "procid",
        "msgid": "msgid",
        "svc": "app",
    }


# --- configuration errors -------------------------------------------------------------------


def config_error(**source_keys) -> str:
    with pytest.raises(ValidationError) as info:
        SourceConfig(name="src", glob="src/*", **source_keys)
    return str(info.value)


@pytest.mark.parametrize(
    ("keys", "loc", "message"),
    [
        ({"format": "nginx_comon"}, "format", "unknown format 'nginx_comon'; known formats"),
        ({"format": "logfmt", "pattern": "(?P<a>x)"}, "", "'pattern' only applies"),
        (
            {"format": "json", "fields": {"status": "integer"}},
            "fields.status",
            "unknown type 'integer' (use one of string, int, float, bool, timestamp)",
        ),
        (
            {"format": "json", "fields": {"latency": {"pth": "x", "type": "float"}}},
            "fields.latency",
            "unknown key 'pth': a renamed field is {path: ..., type: ...}",
        ),
        (
            {"format": "json", "fields": {"latency": {"type": "float"}}},
            "fields.latency",
            "a renamed field needs 'path'",
        ),
        (
            {"format": "json", "fields": {"latency": {"path": "t", "type": "double"}}},
            "fields.latency",
            "unknown type 'double'",
        ),
        ({"format": "json", "fields": {"latency": 5}}, "fields.latency", "expected a type"),
        (
            {"format": "nginx_combined", "fields": {"bytes": {"path": "bytes_sent"}}},
            "",
            "fields.bytes.path names group 'bytes_sent', which the regex does not define",
        ),
        (
            {"format": "syslog_rfc3164", "fields": {"severity": "int"}},
            "",
            "fields.severity names group 'severity', which the regex does not define",
        ),
        (
            {"format": "logfmt", "fields": {"m": {"path": '$."a.b"'}}},
            "",
            "fields.m.path: JSON paths ($...) only apply to format 'json'",
        ),
        ({"format": "json", "on_cast_error": "drop"}, "on_cast_error", "'keep' or 'quarantine'"),
        (
            {"format": "json", "timestamp": {"format": "rfc3164"}},
            "timestamp.format",
            "unknown timestamp format 'rfc3164': use iso8601, epoch_s, epoch_ms, epoch_us, "
            "epoch_ns, syslog",
        ),
        (
            {"format": "json", "timestamp": {"format": "%d/%Q/%Y"}},
            "timestamp.format",
            "invalid strptime pattern '%d/%Q/%Y'",
        ),
    ],
)
def test_bad_source_settings_name_the_key(keys: dict, loc: str, message: str) -> None:
    text = config_error(**keys)
    assert message in text
    if loc:
        assert f"\n{loc}\n" in text


def test_bad_field_in_yaml_is_reported_with_file_and_key_path(tmp_path) -> None:
    def bad_field(data: dict) -> None:
        data["sources"][0]["fields"]["latency"] = {"path": "timing.latency_ms", "type": "decimal"}
        data["sources"][0]["on_cast_error"] = "explode"

    with pytest.raises(ConfigError) as info:
        write_project(tmp_path, bad_field)
    text = str(info.value)
    file = tmp_path / "configs" / "loglens.yaml"
    assert f"{file}: sources[0] (app).fields.latency: unknown type 'decimal'" in text
    assert f"{file}: sources[0] (app).on_cast_error: Input should be 'keep' or 'quarantine'" in text


def test_new_formats_validate_from_yaml(tmp_path) -> None:
    def more_sources(data: dict) -> None:
        data["sources"] += [
            {"name": "svc", "glob": "svc/*.log", "format": "logfmt", "on_cast_error": "quarantine",
             "fields": {"status": "int", "latency": {"path": "timing.latency_ms", "type": "float"}}},
            {"name": "sys", "glob": "sys/*.log", "format": "syslog_rfc3164", "timezone": "Europe/Berlin"},
            {"name": "ietf", "glob": "ietf/*.log", "format": "syslog_rfc5424"},
            {"name": "clf", "glob": "clf/*.log", "format": "apache_common", "service": "www"},
        ]  # fmt: skip

    project = write_project(tmp_path, more_sources)
    svc = project.config.source("svc")
    assert (svc.on_cast_error, svc.field_types()) == (
        "quarantine",
        {"status": "int", "latency": "float"},
    )
    assert project.config.source("sys").timestamp_spec().format == "syslog"
    assert project.config.source("app").on_cast_error == "keep"


def test_every_preset_is_consistent_and_its_example_parses() -> None:
    assert set(PRESETS) <= set(known_formats())
    for name, preset in PRESETS.items():
        assert preset.example and preset.description, name
        [row] = parse(source(name), preset.example)  # validates groups and timestamp format
        assert (row["reason"], row["event_time"] is not None) == (None, True), name


def test_a_preset_naming_a_missing_group_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="preset mapping names group 'msg', which its pattern"):
        RegexPreset(
            pattern=r"^(?P<ts>\S+) (?P<message>.*)$",
            timestamp_field="ts",
            timestamp_format="iso8601",
            mapping={"message": "msg"},
        )


# --- throughput (printed, not asserted) -----------------------------------------------------

GENERATORS: dict[str, Callable[[int], str]] = {
    "json": lambda i: (
        f'{{"ts":"2026-11-25T13:{i % 60:02d}:00Z","level":"info","service":"cart","host":"web-{i % 7}",'
        f'"message":"GET /api/{i} done","status":{200 + i % 5},"latency_ms":{i % 100}.5}}'
    ),
    "logfmt": lambda i: (
        f"ts=2026-11-25T13:{i % 60:02d}:00Z level=info service=cart host=web-{i % 7} "
        f'msg="GET /api/{i} done" status={200 + i % 5} latency_ms={i % 100}.5'
    ),
    "nginx_combined": lambda i: (
        f'10.1.{i % 250}.{i % 7} - - [25/Nov/2026:13:{i % 60:02d}:00 +0000] "GET /api/cart/{i} HTTP/1.1" '
        f'200 {i} "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)"'
    ),
    "nginx_common": lambda i: (
        f'10.1.{i % 250}.{i % 7} - - [25/Nov/2026:13:{i % 60:02d}:00 +0000] "GET /api/cart/{i} HTTP/1.1" '
        f"200 {i}"
    ),
    "syslog_rfc3164": lambda i: (
        f"<{i % 192}>Nov {1 + i % 24:2d} 13:{i % 60:02d}:00 web-{i % 7} sshd[{i}]: "
        f"Accepted publickey for user{i} from 10.1.2.3 port 22"
    ),
    "syslog_rfc5424": lambda i: (
        f"<{i % 192}>1 2026-11-25T13:{i % 60:02d}:00.123Z web-{i % 7} cart {i} ID47 "
        f'[origin ip="10.1.2.3"] order {i} placed'
    ),
    "level_text": lambda i: (
        f"2026-11-25 13:{i % 60:02d}:00,123 INFO [payments] charge {i} accepted"
    ),
}


@pytest.mark.slow
def test_parse_throughput_per_format_is_printed() -> None:
    """lines/s of `parse_sql` alone (no reading, no inserts); `-s` shows the table."""
    n = int(os.environ.get("LOGLENS_PARSE_BENCH_LINES", "200000"))
    typed = {"status": "int", "latency_ms": "float"}
    results = []
    for name, generate in GENERATORS.items():
        data = "".join(generate(i) + "\n" for i in range(n)).encode()
        variants = [("", source(name))]
        if name in ("json", "logfmt"):
            variants.append(
                (" +quarantine", source(name, fields=typed, on_cast_error="quarantine"))
            )
        for suffix, config in variants:
            with duckdb.connect() as conn:
                conn.execute("SET TimeZone='UTC'")
                conn.execute("SET threads=2")
                conn.register("batch", split_lines(data, 0, 1 << 20))
                sql = parse_sql(config)
                best = 0.0
                for _ in range(3):
                    started = time.perf_counter()
                    conn.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {sql}")
                    best = max(best, n / (time.perf_counter() - started))
                bad = conn.execute("SELECT count(*) FROM parsed WHERE reason IS NOT NULL")
                assert bad.fetchall() == [(0,)], name
            results.append((name + suffix, best))
    print(f"\nparse_sql throughput, {n:,} lines, 2 DuckDB threads:")
    for name, rate in results:
        print(f"  {name:28s} {rate:>12,.0f} lines/s")
