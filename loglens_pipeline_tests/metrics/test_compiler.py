"""Compiled metrics against an independent Python computation over the same synthetic events.

The events live in a real DuckDB file with the `raw` schema. Every expected row is computed here
from the documented semantics (windows named by their end, closed at the start, owned by the
hour their end falls in; zero-filling for counts and rates; omission of empty value windows),
never from the compiler's SQL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from loglens_pipeline.config.metrics import MetricSpec
from loglens_pipeline.metrics.compiler import CompiledMetric, compile_metric
from loglens_pipeline.metrics.compute import MetricResult, compute_metric, computed_ahead
from loglens_pipeline.warehouse.schema import ensure_raw_schema
from loglens_pipeline_tests.conftest import write_project

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
H1 = datetime(2026, 3, 2, 10)  # the three partition hours under test: 10:00, 11:00, 12:00
H2 = H1 + HOUR
H3 = H2 + HOUR
END = H3 + HOUR
GAP = (H2 + 20 * MINUTE, H2 + 25 * MINUTE)  # no events at all, from any source
NO_USER = (H3 + 40 * MINUTE, H3 + 41 * MINUTE)  # events, but none with a user_id
NO_LATENCY = (H3 + 50 * MINUTE, H3 + 51 * MINUTE)  # events, but none with a latency
SERVICES = ("api", "checkout", "payments")
LATE_SERVICE = "search"  # present in the second hour only
LEVELS = ("INFO", "WARN", "ERROR", "DEBUG")
STATUSES = (200, 201, 204, 404, 429, 500, 503)
METHODS = ("GET", "POST", "PUT")
TENANTS = ("acme", "globex", "initech")

# Single events on window and hour boundaries; each has its own host so it can be picked out.
BOUNDARIES = {
    "b-0950": H1 - 10 * MINUTE,
    "b-0959": H1 - timedelta(microseconds=1),
    "b-1000": H1,
    "b-1004": H1 + 5 * MINUTE - timedelta(microseconds=1),
    "b-1005": H1 + 5 * MINUTE,
    "b-1015": H1 + 15 * MINUTE,
    "b-1059": H2 - timedelta(milliseconds=1),
    "b-1100": H2,
    "b-1130": H2 + 30 * MINUTE,
    "b-1200": H3,
    "b-1245": H3 + 45 * MINUTE,
    "b-1300": END,
}
# Events of host 'tie' (tenant, time): for max_groups ranking and per-hour zero-filling.
TIES = [
    ("t-b", H1 + 7 * MINUTE),
    ("t-c", H3 + 1 * MINUTE),
    ("t-c", H3 + 22 * MINUTE),
    ("t-c", H3 + 48 * MINUTE),
    ("t-a", H3 + 2 * MINUTE),
    ("t-a", H3 + 33 * MINUTE),
    ("t-b", H3 + 14 * MINUTE),
    ("t-b", H3 + 59 * MINUTE),
]


@dataclass(frozen=True)
class Event:
    t: datetime
    source: str
    tenant: str | None
    service: str | None
    host: str
    level: str
    status: int | None
    latency_ms: float | None
    user_id: str | None
    method: str | None
    raw_status: object = None  # what is written to attrs when it differs from `status`


def _generate() -> list[Event]:
    rng = np.random.default_rng(20260302)
    events: list[Event] = []
    span_ms = int((END + 10 * MINUTE - (H1 - 15 * MINUTE)).total_seconds() * 1000)

    def random_event(t: datetime, source: str = "app", **fixed) -> Event:
        in_h2 = H2 <= t < H3
        service = (
            LATE_SERVICE
            if in_h2 and rng.random() < 0.15
            else SERVICES[rng.choice(3, p=[0.5, 0.3, 0.2])]
        )
        values = dict(
            t=t,
            source=source,
            tenant=TENANTS[rng.integers(3)],
            service=service if source == "app" else "edge-proxy",
            host=f"web-{rng.integers(4)}",
            level=LEVELS[rng.choice(4, p=[0.6, 0.2, 0.1, 0.1])],
            status=int(STATUSES[rng.integers(len(STATUSES))]),
            latency_ms=float(rng.lognormal(3.5, 0.8)) if rng.random() > 0.05 else None,
            user_id=f"u{rng.integers(60)}" if rng.random() > 0.2 else None,
            method=METHODS[rng.choice(3, p=[0.6, 0.3, 0.1])] if rng.random() > 0.1 else None,
        )
        if rng.random() < 0.05:  # integers written as JSON integers, not floats
            values["latency_ms"] = float(rng.integers(1, 500))
        if rng.random() < 0.01:  # unreadable status: TRY_CAST gives NULL
            values.update(status=None, raw_status="n/a")
        if NO_USER[0] <= t < NO_USER[1]:
            values["user_id"] = None
        if NO_LATENCY[0] <= t < NO_LATENCY[1]:
            values["latency_ms"] = None
        values.update(fixed)
        return Event(**values)

    start = H1 - 15 * MINUTE
    for offset in rng.integers(0, span_ms, size=1800):
        events.append(random_event(start + timedelta(milliseconds=int(offset))))
    for offset in rng.integers(0, span_ms, size=150):
        events.append(random_event(start + timedelta(milliseconds=int(offset)), "nginx"))
    for window in (NO_USER, NO_LATENCY):
        events += [random_event(window[0] + timedelta(seconds=s)) for s in (10, 30)]
    for host, t in BOUNDARIES.items():
        events.append(random_event(t, host=host, service="api", level="INFO"))
    for tenant, t in TIES:
        events.append(random_event(t, host="tie", tenant=tenant))
    events = [e for e in events if not GAP[0] <= e.t < GAP[1]]
    return sorted(events, key=lambda e: e.t)


EVENTS = _generate()


def _attrs(event: Event) -> str:
    attrs: dict = {}
    if event.source == "nginx":
        attrs = {"status": event.status, "method": event.method, "path": "/"}
        return json.dumps({k: v for k, v in attrs.items() if v is not None})
    status = event.raw_status if event.raw_status is not None else event.status
    if status is not None:
        attrs["status"] = status
    if event.latency_ms is not None:
        latency = event.latency_ms
        attrs["latency_ms"] = int(latency) if latency.is_integer() else latency
    if event.user_id is not None:
        attrs["user_id"] = event.user_id
    attrs["http"] = {"path": "/checkout"}
    if event.method is not None:
        attrs["http"]["method"] = event.method
    return json.dumps(attrs)


@dataclass
class Warehouse:
    conn: duckdb.DuckDBPyConnection
    sources: dict
    events: list[Event]
    times: np.ndarray  # event times in microseconds, sorted


def _us(value: datetime) -> int:
    return int((value - datetime(2026, 1, 1)) / timedelta(microseconds=1))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    root: Path = tmp_path_factory.mktemp("compiler")
    project = write_project(root)
    events = EVENTS
    frame = pd.DataFrame(
        {
            "event_time": pd.to_datetime([e.t for e in events]).astype("datetime64[us]"),
            "source": [e.source for e in events],
            "tenant": [e.tenant for e in events],
            "service": [e.service for e in events],
            "host": [e.host for e in events],
            "level": [e.level for e in events],
            "message": [f"request {i}" for i in range(len(events))],
            "attrs": [_attrs(e) for e in events],
        }
    )
    conn = duckdb.connect(str(root / "warehouse.duckdb"))
    ensure_raw_schema(conn)
    conn.register("synthetic", frame)
    conn.execute(
        """INSERT INTO raw.events
           SELECT event_time, source, tenant, service, host, level, message, attrs,
                  'file-1', 'app/x.jsonl', row_number() OVER (), TIMESTAMP '2026-03-02 14:00:00', 1
           FROM synthetic"""
    )
    conn.unregister("synthetic")
    assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == len(events)
    sources = {s.name: s for s in project.config.sources}
    yield Warehouse(conn, sources, events, np.array([_us(e.t) for e in events]))
    conn.close()


# --- the independent reference ---------------------------------------------------------------

Predicate = Callable[[Event], bool]


def _ge(value, bound) -> bool:
    return value is not None and value >= bound


@dataclass(frozen=True)
class Case:
    """A metric as YAML (dict) and the same metric as Python predicates and getters."""

    spec: dict
    where: Predicate = lambda e: True
    denominator: Predicate = lambda e: True
    numerator: Predicate = lambda e: False
    value: Callable[[Event], object] | None = None
    groups: tuple[Callable[[Event], str | None], ...] = ()


def _window(spec: dict) -> tuple[timedelta, timedelta]:
    window = spec["window"]
    if isinstance(window, str):
        window = {"size": window}
    size = _duration(window["size"])
    return size, _duration(window.get("step", window["size"]))


def _duration(text: str) -> timedelta:
    return {"m": MINUTE, "h": HOUR}[text[-1]] * int(text[:-1])


def _owner(end: datetime) -> datetime:
    """The hour H with end in (H, H+1h]."""
    floor = end.replace(minute=0, second=0, microsecond=0)
    return floor - HOUR if floor == end else floor


def windows_of(
    events: list[Event], times: np.ndarray, case: Case, start: datetime, end: datetime
) -> dict[datetime, dict[tuple, list[Event]]]:
    """{bucket_end: {group key: counted events}} for every window ending in (start, end]."""
    spec = case.spec
    sources = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
    size, step = _window(spec)
    counted = np.array(
        [e.source in sources and case.where(e) and case.denominator(e) for e in events], dtype=bool
    )
    keys = [tuple(group(e) for group in case.groups) for e in events]
    windows: dict[datetime, dict[tuple, list[Event]]] = {}
    window_end = start + step
    while window_end <= end:
        lo = np.searchsorted(times, _us(window_end - size), side="left")
        hi = np.searchsorted(times, _us(window_end), side="left")
        members: dict[tuple, list[Event]] = {}
        for i in (lo + np.flatnonzero(counted[lo:hi])).tolist():
            members.setdefault(keys[i], []).append(events[i])
        windows[window_end] = members
        window_end += step
    return windows


def expected_rows(
    wh: Warehouse, case: Case, start: datetime, end: datetime
) -> dict[tuple, tuple[datetime, datetime, float, int]]:
    """{(bucket_end, *groups): (hour, bucket_start, value, events)} for windows ending in (start, end]."""
    aggregation = case.spec["aggregation"]
    size, _ = _window(case.spec)
    windows = windows_of(wh.events, wh.times, case, start, end)
    zero_filled = aggregation in ("count", "rate")
    groups_of_hour: dict[datetime, set[tuple]] = {}
    for window_end, members in windows.items():
        groups_of_hour.setdefault(_owner(window_end), set()).update(members)

    rows = {}
    for window_end, members in windows.items():
        hour = _owner(window_end)
        keys = (groups_of_hour[hour] if case.groups else {()}) if zero_filled else members
        for key in keys:
            chosen = members.get(key, [])
            value = _aggregate(case, aggregation, chosen, size)
            if value is not None:
                rows[(window_end, *key)] = (hour, window_end - size, value, len(chosen))
    return rows


def _aggregate(case: Case, aggregation: str, chosen: list[Event], size: timedelta):
    if aggregation == "count":
        return float(len(chosen))
    if aggregation == "rate":
        return len(chosen) / size.total_seconds()
    if aggregation == "ratio":
        return sum(1 for e in chosen if case.numerator(e)) / len(chosen) if chosen else None
    values = [v for v in (case.value(e) for e in chosen) if v is not None]
    if not values:
        return None
    if aggregation == "unique_count":
        return float(len(set(values)))
    if aggregation == "sum":
        return math.fsum(values)
    if aggregation == "avg":
        return math.fsum(values) / len(values)
    if aggregation == "min":
        return float(min(values))
    if aggregation == "max":
        return float(max(values))
    if aggregation == "percentile":
        return float(np.quantile(np.array(values, dtype=float), case.spec["p"], method="linear"))
    raise AssertionError(aggregation)


def compiled(wh: Warehouse, spec: dict) -> CompiledMetric:
    return compile_metric(MetricSpec.model_validate(spec), wh.sources)


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def actual_rows(result: MetricResult, metric: CompiledMetric) -> dict[tuple, tuple]:
    frame = result.frame
    assert list(frame.columns) == metric.columns
    assert frame["bucket_end"].is_monotonic_increasing
    rows = {}
    for record in frame.itertuples(index=False, name=None):
        hour, bucket_start, bucket_end, *groups, value, events = map(_plain, record)
        key = (bucket_end, *groups)
        assert key not in rows, f"duplicate row {key}"
        rows[key] = (hour, bucket_start, value, events)
    return rows


def assert_matches(wh: Warehouse, case: Case, start: datetime = H1, end: datetime = END):
    metric = compiled(wh, case.spec)
    result = compute_metric(wh.conn, metric, start, end)
    actual = actual_rows(result, metric)
    expected = expected_rows(wh, case, start, end)
    exact = case.spec["aggregation"] in ("count", "unique_count")
    for key in expected.keys() & actual.keys():  # values first, then which rows exist
        hour, bucket_start, value, events = expected[key]
        got_hour, got_start, got_value, got_events = actual[key]
        assert (got_hour, got_start, got_events) == (hour, bucket_start, events), key
        if exact:
            assert got_value == value, key
        else:
            assert math.isclose(got_value, value, rel_tol=1e-9, abs_tol=1e-12), (
                key,
                got_value,
                value,
            )
    missing = sorted(set(expected) - set(actual), key=str)[:5]
    extra = sorted(set(actual) - set(expected), key=str)[:5]
    assert not missing and not extra, f"missing rows {missing}, unexpected rows {extra}"
    assert result.dropped_groups == 0
    return result, expected


# --- the matrix: every aggregation x window x (filter, group_by) ------------------------------


def _latency(e: Event):
    return e.latency_ms


AGGREGATIONS = {
    "count": ({}, {}),
    "rate": ({}, {}),
    "sum": ({"field": "latency_ms"}, {"value": _latency}),
    "avg": ({"field": "latency_ms"}, {"value": _latency}),
    "min": ({"field": "latency_ms"}, {"value": _latency}),
    "max": ({"field": "latency_ms"}, {"value": _latency}),
    "percentile": ({"field": "latency_ms", "p": 0.9}, {"value": _latency}),
    "unique_count": ({"field": "user_id"}, {"value": lambda e: e.user_id}),
    "ratio": ({"numerator": "status >= 500"}, {"numerator": lambda e: _ge(e.status, 500)}),
}
WINDOWS = {
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "1h": "1h",
    "15m/5m": {"size": "15m", "step": "5m"},
    "10m/1m": {"size": "10m", "step": "1m"},
}
# (filter or None, predicate, group_by, group getters)
VARIANTS = {
    "plain": (None, None, [], ()),
    "filtered": (
        "level in ('INFO', 'WARN') and status < 500",
        lambda e: e.level in ("INFO", "WARN") and e.status is not None and e.status < 500,
        [],
        (),
    ),
    "grouped": (None, None, ["service"], (lambda e: e.service,)),
    "filtered+grouped": (
        "service != 'api' and (latency_ms >= 40 or http.method = 'POST')",
        lambda e: e.service != "api" and (_ge(e.latency_ms, 40) or e.method == "POST"),
        ["level", "service"],
        (lambda e: e.level, lambda e: e.service),
    ),
}


def matrix_case(aggregation: str, window: str, variant: str) -> Case:
    spec_extra, python_extra = AGGREGATIONS[aggregation]
    where_sql, where, group_by, groups = VARIANTS[variant]
    spec = {
        "name": f"m_{aggregation}",
        "description": "matrix",
        "source": "app",
        "aggregation": aggregation,
        "window": WINDOWS[window],
        "group_by": group_by,
        **spec_extra,
    }
    extra = dict(python_extra)
    if where_sql:
        spec["filter"] = where_sql
        extra["where"] = where
    if aggregation == "ratio" and variant.startswith("filtered"):
        spec["denominator"] = "http.method in ('GET', 'POST')"
        extra["denominator"] = lambda e: e.method in ("GET", "POST")
    return Case(spec, groups=groups, **extra)


def _matrix() -> list:
    params = []
    for aggregation in AGGREGATIONS:
        for window in WINDOWS:
            for variant in VARIANTS:
                params.append(
                    pytest.param(
                        aggregation, window, variant, id=f"{aggregation}-{window}-{variant}"
                    )
                )
    return params


@pytest.mark.parametrize(("aggregation", "window", "variant"), _matrix())
def test_metric_matches_independent_computation(warehouse, aggregation, window, variant):
    _, expected = assert_matches(warehouse, matrix_case(aggregation, window, variant))
    assert expected, "the case must produce rows to compare"


# --- specific semantics -----------------------------------------------------------------------


def _count(window, **extra) -> dict:
    return {
        "name": "c",
        "description": "count",
        "source": "app",
        "aggregation": "count",
        "window": window,
        **extra,
    }


def _in_range(wh: Warehouse, start: datetime, end: datetime, predicate: Predicate) -> int:
    return sum(1 for e in wh.events if start <= e.t < end and predicate(e))


@pytest.mark.parametrize("window", ["1m", "5m", "15m", "1h"])
def test_tumbling_buckets_count_every_event_exactly_once(warehouse, window):
    metric = compiled(warehouse, _count(window))
    frame = compute_metric(warehouse.conn, metric, H1, END).frame
    assert len(frame) == 3 * HOUR / _duration(window)  # zero-filled: every window is present
    app_events = _in_range(warehouse, H1, END, lambda e: e.source == "app")
    assert frame["events"].sum() == app_events
    assert frame["value"].sum() == app_events
    hosts = [h for h, t in BOUNDARIES.items() if H1 <= t < END]
    boundary = compiled(warehouse, _count(window, filter=f"host in {tuple(hosts)}"))
    frame = compute_metric(warehouse.conn, boundary, H1, END).frame
    assert frame["events"].sum() == len(hosts)


@pytest.mark.parametrize(
    ("host", "window", "expected_ends"),
    [
        ("b-1005", "5m", [H1 + 10 * MINUTE]),  # closed at the start: [10:05, 10:10)
        ("b-1004", "5m", [H1 + 5 * MINUTE]),  # 10:04:59.999999 is still in [10:00, 10:05)
        ("b-1000", "1h", [H2]),  # the hour's start belongs to the hour
        ("b-1059", "1h", [H2]),
        ("b-1015", "15m", [H1 + 30 * MINUTE]),
        ("b-1015", {"size": "15m", "step": "5m"}, [H1 + m * MINUTE for m in (20, 25, 30)]),
        # Sliding windows reach back: 09:50 counts in 10:00's first windows only.
        ("b-0950", {"size": "15m", "step": "5m"}, [H1 + 5 * MINUTE]),
        ("b-0959", {"size": "10m", "step": "1m"}, [H1 + m * MINUTE for m in range(1, 10)]),
        ("b-0959", "5m", []),  # before the range, tumbling: not counted at all
        ("b-1300", "5m", []),  # the range's end opens the next hour's first window
        ("b-1300", {"size": "15m", "step": "5m"}, []),
    ],
)
def test_boundary_event_lands_in_the_window_starting_there(warehouse, host, window, expected_ends):
    metric = compiled(warehouse, _count(window, filter=f"host = '{host}'"))
    frame = compute_metric(warehouse.conn, metric, H1, END).frame
    nonzero = frame[frame["events"] > 0]
    assert [t.to_pydatetime() for t in nonzero["bucket_end"]] == expected_ends
    assert set(nonzero["events"]) <= {1}
    size, _ = _window({"window": window})
    assert [t.to_pydatetime() for t in nonzero["bucket_start"]] == [e - size for e in expected_ends]


@pytest.mark.parametrize("window", ["5m", {"size": "15m", "step": "5m"}])
def test_event_at_the_end_of_an_hour_belongs_to_the_next_hour(warehouse, window):
    metric = compiled(warehouse, _count(window, filter="host = 'b-1100'"))
    first_hour = compute_metric(warehouse.conn, metric, H1, H2).frame
    assert len(first_hour) == 12 and first_hour["events"].sum() == 0
    assert first_hour["bucket_end"].max().to_pydatetime() == H2
    second_hour = compute_metric(warehouse.conn, metric, H2, H3).frame
    first_window = second_hour.iloc[0]
    assert first_window["bucket_end"].to_pydatetime() == H2 + 5 * MINUTE
    assert first_window["hour"].to_pydatetime() == H2
    assert first_window["events"] == 1
    size, _ = _window({"window": window})
    assert second_hour["events"].sum() == size / (5 * MINUTE)
    assert set(second_hour["hour"]) == {pd.Timestamp(H2)}


def test_empty_gap_is_zero_filled_for_counts_and_rates(warehouse):
    for aggregation in ("count", "rate"):
        metric = compiled(warehouse, {**_count("5m"), "aggregation": aggregation})
        frame = compute_metric(warehouse.conn, metric, H2, H3).frame
        gap = frame[frame["bucket_end"] == pd.Timestamp(GAP[1])]
        assert len(gap) == 1 and gap["value"].iloc[0] == 0 and gap["events"].iloc[0] == 0
        assert len(frame) == 12


def test_empty_gap_is_omitted_for_value_aggregations(warehouse):
    case = matrix_case("avg", "5m", "plain")
    metric = compiled(warehouse, case.spec)
    frame = compute_metric(warehouse.conn, metric, H2, H3).frame
    assert pd.Timestamp(GAP[1]) not in set(frame["bucket_end"])
    assert len(frame) == 11


def test_window_whose_values_are_all_null_is_omitted(warehouse):
    # The 12:50 minute has events, none with a latency: no row for sum, avg, ...
    for aggregation in ("sum", "avg", "min", "max", "percentile"):
        case = matrix_case(aggregation, "1m", "plain")
        frame = compute_metric(warehouse.conn, compiled(warehouse, case.spec), H3, END).frame
        assert pd.Timestamp(NO_LATENCY[1]) not in set(frame["bucket_end"]), aggregation
        assert pd.Timestamp(NO_LATENCY[1] - MINUTE) in set(frame["bucket_end"])


def test_unique_count_omits_a_window_without_values(warehouse):
    metric = compiled(
        warehouse,
        {
            "name": "u",
            "description": "users",
            "source": "app",
            "aggregation": "unique_count",
            "field": "user_id",
            "window": "1m",
        },
    )
    frame = compute_metric(warehouse.conn, metric, H3, END).frame
    events_there = _in_range(warehouse, *NO_USER, lambda e: e.source == "app")
    assert events_there >= 2
    assert pd.Timestamp(NO_USER[1]) not in set(frame["bucket_end"])


def test_grouped_counts_zero_fill_only_groups_seen_in_the_hour(warehouse):
    case = Case(
        _count("5m", group_by=["service"]),
        groups=(lambda e: e.service,),
    )
    assert_matches(warehouse, case)
    frame = compute_metric(warehouse.conn, compiled(warehouse, case.spec), H1, END).frame
    hours = frame.groupby("hour")["service"].apply(set).to_dict()
    assert hours[pd.Timestamp(H1)] == set(SERVICES)
    assert hours[pd.Timestamp(H2)] == {*SERVICES, LATE_SERVICE}
    assert hours[pd.Timestamp(H3)] == set(SERVICES)
    late = frame[frame["service"] == LATE_SERVICE]
    assert len(late) == 12  # every window of its hour, zero or not
    assert late["events"].sum() == _in_range(warehouse, H1, END, lambda e: e.service == "search")
    # A sliding window carries the late service into the first windows of the third hour.
    sliding = Case(
        _count({"size": "15m", "step": "5m"}, group_by=["service"]),
        groups=(lambda e: e.service,),
    )
    assert_matches(warehouse, sliding)


def test_group_columns_are_varchar_with_dots_replaced(warehouse):
    spec = _count(
        "15m",
        group_by=["http.method", "status"],
        filter="http.method is not null and status is not null",
    )
    case = Case(
        spec,
        where=lambda e: e.method is not None and e.status is not None,
        groups=(lambda e: e.method, lambda e: str(e.status)),
    )
    metric = compiled(warehouse, spec)
    assert metric.columns == [
        "hour",
        "bucket_start",
        "bucket_end",
        "http_method",
        "status",
        "value",
        "events",
    ]
    assert metric.column_types[3:5] == ["VARCHAR", "VARCHAR"]
    result, _ = assert_matches(warehouse, case)
    assert set(result.frame["http_method"]) == set(METHODS)


def test_null_group_value_is_counted(warehouse):
    case = Case(_count("15m", group_by=["http.method"]), groups=(lambda e: e.method,))
    expected = expected_rows(warehouse, case, H1, END)
    assert sum(row[3] for key, row in expected.items() if key[1] is None) > 0
    assert_matches(warehouse, case)


def test_ratio_events_count_the_denominator(warehouse):
    case = matrix_case("ratio", "15m", "filtered")
    _, expected = assert_matches(warehouse, case)
    total = sum(row[3] for row in expected.values())
    assert total == _in_range(
        warehouse, H1, END, lambda e: e.source == "app" and case.where(e) and case.denominator(e)
    )


def test_max_groups_keeps_the_busiest_groups_per_hour_and_reports_the_rest(warehouse):
    spec = _count("15m", filter="host = 'tie'", group_by=["tenant"], max_groups=2)
    metric = compiled(warehouse, spec)
    result = compute_metric(warehouse.conn, metric, H1, END)
    kept = result.frame.groupby("hour")["tenant"].apply(set).to_dict()
    # Hour 1: only t-b. Hour 2: no events, no groups. Hour 3: t-c (3) then t-a and t-b tied
    # at 2, the tie broken by value: t-a kept, t-b dropped.
    assert kept == {pd.Timestamp(H1): {"t-b"}, pd.Timestamp(H3): {"t-a", "t-c"}}
    assert result.frame.groupby("hour").size().to_dict() == {
        pd.Timestamp(H1): 4,
        pd.Timestamp(H3): 8,
    }
    assert result.dropped_groups == 1
    assert result.dropped_examples == ["t-b"]
    by_tenant = result.frame[result.frame["hour"] == pd.Timestamp(H3)].groupby("tenant")
    assert by_tenant["events"].sum().to_dict() == {"t-a": 2, "t-c": 3}


def test_max_groups_on_random_data_matches_reference_ranking(warehouse):
    spec = _count("5m", group_by=["service"], max_groups=2)
    result = compute_metric(warehouse.conn, compiled(warehouse, spec), H1, END)
    expected_kept, expected_dropped = {}, set()
    for hour in (H1, H2, H3):
        counts: dict[str, int] = {}
        for e in warehouse.events:
            if e.source == "app" and hour <= e.t < hour + HOUR:
                counts[e.service] = counts.get(e.service, 0) + 1
        ranked = sorted(counts, key=lambda s: (-counts[s], s))
        expected_kept[pd.Timestamp(hour)] = set(ranked[:2])
        expected_dropped |= {(hour, s) for s in ranked[2:]}
    assert result.frame.groupby("hour")["service"].apply(set).to_dict() == expected_kept
    assert result.dropped_groups == len(expected_dropped)
    assert set(result.dropped_examples) <= {s for _, s in expected_dropped}
    assert result.dropped_examples


BACKFILL_SPECS = {
    "count-grouped-sliding": _count({"size": "15m", "step": "5m"}, group_by=["service"]),
    "rate-1m": {**_count("1m"), "aggregation": "rate"},
    "p95-sliding": {
        **matrix_case("percentile", "10m/1m", "grouped").spec,
        "p": 0.95,
    },
    "ratio-5m": matrix_case("ratio", "5m", "filtered+grouped").spec,
    "unique-15m": matrix_case("unique_count", "15m", "plain").spec,
    "max-groups": _count("5m", group_by=["service"], max_groups=2),
}


@pytest.mark.parametrize("name", list(BACKFILL_SPECS))
def test_range_backfill_equals_hour_by_hour_runs(warehouse, name):
    metric = compiled(warehouse, BACKFILL_SPECS[name])

    def run(start, end) -> pd.DataFrame:
        return compute_metric(warehouse.conn, metric, start, end).frame

    whole = run(H1, END)
    pieces = pd.concat([run(H1, H2), run(H2, H3), run(H3, END)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, pieces, check_exact=True)
    pair = run(H2, END)
    pd.testing.assert_frame_equal(
        whole[whole["hour"] >= pd.Timestamp(H2)].reset_index(drop=True), pair, check_exact=True
    )
    assert set(whole["hour"]) <= {pd.Timestamp(h) for h in (H1, H2, H3)}


def test_other_sources_and_events_outside_the_range_are_ignored(warehouse):
    spec = {**_count("1h"), "source": ["app", "nginx"]}
    frame = compute_metric(warehouse.conn, compiled(warehouse, spec), H1, END).frame
    assert list(frame["events"]) == [
        _in_range(warehouse, h, h + HOUR, lambda e: True) for h in (H1, H2, H3)
    ]
    app = compute_metric(warehouse.conn, compiled(warehouse, _count("1h")), H1, END).frame
    nginx = sum(1 for e in warehouse.events if e.source == "nginx" and H1 <= e.t < END)
    assert nginx > 0
    assert frame["events"].sum() - app["events"].sum() == nginx


def test_metrics_computed_ahead_are_those_computed_one_by_one(warehouse):
    metrics = [
        compiled(warehouse, {**_count("5m"), "name": "a"}),
        compiled(warehouse, {**_count("1h", filter="level = 'ERROR'"), "name": "b"}),
        compiled(warehouse, {**_count("15m"), "name": "c", "group_by": ["service"]}),
    ]
    with computed_ahead(warehouse.conn, metrics, H1, END) as result:
        ahead = [result(metric).frame for metric in metrics]
    for metric, frame in zip(metrics, ahead, strict=True):
        pd.testing.assert_frame_equal(frame, compute_metric(warehouse.conn, metric, H1, END).frame)


def test_a_failing_metric_computed_ahead_fails_alone(warehouse):
    broken = compiled(warehouse, {**_count("5m", filter="CAST(host AS INTEGER) > 0"), "name": "x"})
    fine = compiled(warehouse, {**_count("5m"), "name": "y"})
    with computed_ahead(warehouse.conn, [broken, fine], H1, END) as result:
        with pytest.raises(duckdb.ConversionException, match="Could not convert"):
            result(broken)
        assert result(fine).frame["events"].sum() == _in_range(
            warehouse, H1, END, lambda e: e.source == "app"
        )
