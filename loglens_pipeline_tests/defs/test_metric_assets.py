"""Metric assets through Dagster: partitions replaced not doubled, single-run backfills, the
hourly schedule, and late data re-materializing exactly the touched recent hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.runs import run_ingest, run_metrics_range
from loglens_pipeline_tests.conftest import query, write_project

METRICS = ["error_rate", "requests_per_service", "latency_p95", "unique_users", "edge_5xx_rate"]


def write_events(project, name: str, hour: datetime, count: int, *, errors: int = 0) -> None:
    """`count` app requests spread over an hour (the first `errors` of them 5xx) + nginx lines."""
    app = project.logs_dir / "app" / f"{name}.jsonl"
    nginx = project.logs_dir / "nginx" / f"{name}.log"
    app.parent.mkdir(parents=True, exist_ok=True)
    nginx.parent.mkdir(parents=True, exist_ok=True)
    with app.open("a") as a, nginx.open("a") as n:
        for i in range(count):
            t = hour + timedelta(seconds=i * 3600 // count)
            status = 503 if i < errors else 200
            a.write(
                json.dumps(
                    {
                        "ts": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                        "level": "ERROR" if status >= 500 else "INFO",
                        "service": ["cart", "search"][i % 2],
                        "msg": "GET /api",
                        "status": status,
                        "latency_ms": 10.0 + i % 7,
                        "user_id": f"u{i % 13}",
                        "http": {"method": "GET"},
                    }
                )
                + "\n"
            )
            n.write(
                f'10.0.0.{i % 9} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET /api/cart HTTP/1.1" '
                f'{status} 10 "-" "curl"\n'
            )


def metric_rows(project, name: str) -> list[tuple]:
    return query(project, f'SELECT * FROM metrics."{name}" ORDER BY ALL')


def materialize_hour(defs, instance, hour: datetime) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("metrics_job").execute_in_process(
        instance=instance, partition_key=partition_key(hour)
    )
    assert result.success
    return result


HOUR_A = datetime(2026, 11, 20, 10)
HOUR_B = datetime(2026, 11, 20, 11)


@pytest.fixture
def ingested(project, instance):
    write_events(project, "a", HOUR_A, 240, errors=12)
    write_events(project, "b", HOUR_B, 120, errors=60)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    return defs


def test_partition_a_then_b_then_a_again_replaces_a(project, instance, ingested):
    defs = ingested
    materialize_hour(defs, instance, HOUR_A)
    after_a = {m: metric_rows(project, m) for m in METRICS}
    materialize_hour(defs, instance, HOUR_B)
    after_b = {m: metric_rows(project, m) for m in METRICS}
    materialize_hour(defs, instance, HOUR_A)
    after_a_again = {m: metric_rows(project, m) for m in METRICS}
    assert after_a_again == after_b, "re-running A must replace A, not add to it"
    for name in METRICS:
        hours = {row[0] for row in after_b[name]}
        assert hours == {HOUR_A, HOUR_B}, name
        assert set(after_a[name]) < set(after_b[name]), name
    error_rates = dict(
        query(project, "SELECT hour, max(value) FROM metrics.error_rate GROUP BY hour")
    )
    assert error_rates[HOUR_B] > error_rates[HOUR_A]
    # 12 buckets of 5 minutes per service and hour.
    assert query(
        project, "SELECT count(*) FROM metrics.requests_per_service WHERE hour = ?", [HOUR_A]
    ) == [(24,)]


def test_a_range_backfill_is_one_run_and_equals_hour_by_hour(project, instance, ingested):
    defs = ingested
    result = run_metrics_range(defs, instance, HOUR_A, HOUR_B, trigger="test")
    assert result.success
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="metrics_job"))
    assert len(runs) == 1, "a range of hours is a single run"
    # Operators find it filtering by any metric it computed.
    for metric in project.metrics:
        tag = {f"loglens/metric.{metric.spec.name}": "true"}
        assert [r.run_id for r in instance.get_runs(filters=dg.RunsFilter(tags=tag))] == [
            result.run_id
        ]
    ranged = {m: metric_rows(project, m) for m in METRICS}
    for hour in (HOUR_A, HOUR_B):
        materialize_hour(defs, instance, hour)
    assert {m: metric_rows(project, m) for m in METRICS} == ranged
    record = instance.get_latest_materialization_event(dg.AssetKey(["metrics", "error_rate"]))
    meta = record.asset_materialization.metadata
    assert meta["groups"].value == 2 and meta["buckets"].value == 12
    assert "| hour" in meta["preview"].value


def test_hourly_schedule_targets_the_last_closed_hour_after_the_lateness(project):
    defs = build_definitions(project)
    schedule = defs.resolve_schedule_def("hourly_metrics_schedule")
    at = datetime(2026, 11, 20, 12, 15, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-20-11:00"
    assert request.run_key == "2026-11-20-11:00"
    # The Runs page filters by metric: one tag per metric the run computes.
    ours = {k: v for k, v in request.tags.items() if k.startswith("loglens/")}
    assert ours == {
        "loglens/trigger": "schedule",
        **{f"loglens/metric.{m.spec.name}": "true" for m in project.metrics},
    }


@pytest.fixture
def lenient_project(tmp_path):
    """Two hours of allowed lateness, so the last closed hour is within it whatever the clock."""
    return write_project(tmp_path, lambda d: d["partitions"].update(allowed_lateness_minutes=120))


def test_late_data_rematerializes_exactly_the_recent_touched_hours(lenient_project, instance):
    project = lenient_project
    now = datetime.now(UTC).replace(tzinfo=None)
    recent = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    old = recent - timedelta(hours=5)
    untouched = recent - timedelta(hours=2)
    for name, hour in (("recent", recent), ("old", old), ("untouched", untouched)):
        write_events(project, name, hour, 60)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    assert run_metrics_range(defs, instance, old, recent, trigger="test").success
    metrics = dg.AssetSelection.groups("metrics")
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=metrics)
    assert first.total_requested == 0, "nothing changed since the metrics were computed"

    write_events(project, "late", recent, 30, errors=30)  # late events in the last closed hour
    write_events(project, "very_late", old, 30, errors=30)  # and in an hour long closed
    ingest = run_ingest(defs, instance, trigger="test")
    assert ingest.success
    [meta] = [
        e.materialization.metadata
        for e in ingest.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "events"])
    ]
    assert meta["late_hours"].value == partition_key(old)

    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=metrics, cursor=first.cursor
    )
    requested = {
        key.to_user_string(): sorted(second.get_requested_partitions(key))
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[0] == "metrics" and second.get_num_requested(key)
    }
    assert requested, "late data must trigger its hour's metrics"
    assert set(requested) == {f"metrics/{m.spec.name}" for m in project.metrics}
    assert all(parts == [partition_key(recent)] for parts in requested.values()), requested

    third = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=metrics, cursor=second.cursor
    )
    assert third.total_requested == 0, "requested once, not again on the next tick"


class Ticks:
    """Automation ticks evaluated one after another, each from the previous one's cursor."""

    def __init__(self, defs, instance, selection: dg.AssetSelection):
        self.defs, self.instance, self.selection, self.cursor = defs, instance, selection, None

    def __call__(self):
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=self.selection,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return result


READER = dg.AssetKey(["warehouse", "reader_copy"])
AUTOMATED = dg.AssetSelection.groups("metrics", "anomalies") | dg.AssetSelection.assets(READER)


def last_closed_hour() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(
        hours=1
    )


def test_late_lines_landing_during_the_hours_metrics_run_trigger_another(lenient_project, instance):
    project, recent = lenient_project, last_closed_hour()
    defs = build_definitions(project)
    tick = Ticks(defs, instance, dg.AssetSelection.groups("metrics", "anomalies"))
    tick()
    write_events(project, "recent", recent, 60)
    assert run_ingest(defs, instance, trigger="test").success
    assert tick().get_num_requested(dg.AssetKey(["metrics", "error_rate"])) == 1
    assert tick().total_requested == 0  # while the requested run starts
    # Late lines for the hour commit while its run is under way; the run ends before the
    # next tick. Its materialization may predate them: the hour is computed once more.
    write_events(project, "late", recent, 30, errors=30)
    assert run_ingest(defs, instance, trigger="test").success
    assert run_metrics_range(defs, instance, recent, recent, trigger="test").success
    again = tick()
    requested = {
        key.to_user_string()
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if again.get_num_requested(key)
    }
    assert requested == {
        f"{area}/{m.spec.name}" for area in ("metrics", "anomalies") for m in project.metrics
    }
    # The run that computes metrics and anomalies together does not re-request the anomalies.
    assert tick().total_requested == 0
    assert run_metrics_range(defs, instance, recent, recent, trigger="test").success
    assert tick().total_requested == 0


def test_the_copy_waits_for_the_recent_hours_metrics_and_a_racing_copy_is_followed(
    lenient_project, instance
):
    from loglens_pipeline.runs import run_publish

    project, recent = lenient_project, last_closed_hour()
    defs = build_definitions(project)
    tick = Ticks(defs, instance, AUTOMATED)
    tick()
    write_events(project, "recent", recent, 60)
    assert run_ingest(defs, instance, trigger="test").success

    # New raw events of a recent hour: the tick requests that hour's metrics, not the copy
    # (it would publish without the new metric rows and hold the pool the metrics wait for).
    first = tick()
    assert first.get_num_requested(dg.AssetKey(["metrics", "error_rate"])) == 1
    assert first.get_num_requested(READER) == 0
    # A publication from elsewhere (the job page) ends before the metrics run: it predates
    # the metric rows, so automation still publishes once after them.
    assert run_publish(defs, instance, trigger="test").success
    assert run_metrics_range(defs, instance, recent, recent, trigger="test").success
    second = tick()
    assert second.get_num_requested(READER) == 1, "the metric rows must reach the readers"
    assert second.total_requested == 1
    assert tick().total_requested == 0


def test_raw_events_of_old_hours_alone_are_published_at_once(lenient_project, instance):
    project = lenient_project
    defs = build_definitions(project)
    tick = Ticks(defs, instance, AUTOMATED)
    tick()
    write_events(project, "old", last_closed_hour() - timedelta(days=2), 60)
    assert run_ingest(defs, instance, trigger="test").success
    result = tick()
    assert result.get_num_requested(READER) == 1
    assert result.total_requested == 1, "hours beyond the lateness are not recomputed"


def test_changing_group_by_rebuilds_the_table(project, instance, ingested):
    from dataclasses import replace

    from loglens_pipeline.metrics.compiler import compile_metric

    defs = ingested
    materialize_hour(defs, instance, HOUR_A)
    metric = next(m for m in project.metrics if m.spec.name == "requests_per_service")
    spec = metric.spec.model_copy(update={"group_by": []})
    changed = compile_metric(spec, {s.name: s for s in project.config.sources})
    assert changed.code_version != metric.code_version, "editing the YAML marks partitions stale"
    edited = replace(project, metrics=tuple(changed if m is metric else m for m in project.metrics))
    materialize_hour(build_definitions(edited), instance, HOUR_B)
    columns = [r[0] for r in query(project, "DESCRIBE metrics.requests_per_service")]
    assert columns == ["hour", "bucket_start", "bucket_end", "value", "events"]
    assert query(project, "SELECT DISTINCT hour FROM metrics.requests_per_service") == [(HOUR_B,)]


def test_a_failing_metric_fails_the_run_but_not_the_other_metrics(project, instance, ingested):
    from dataclasses import replace

    from loglens_pipeline.metrics.compiler import compile_metric

    # The filter passes every check but cannot run: messages are not integers.
    metric = next(m for m in project.metrics if m.spec.name == "requests_per_service")
    spec = metric.spec.model_copy(
        update={"name": "broken", "filter": "CAST(message AS INTEGER) > 0"}
    )
    broken = compile_metric(spec, {s.name: s for s in project.config.sources})
    edited = replace(project, metrics=(broken, *project.metrics))
    result = (
        build_definitions(edited)
        .resolve_job_def("metrics_job")
        .execute_in_process(
            instance=instance, partition_key=partition_key(HOUR_A), raise_on_error=False
        )
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"1 of {len(edited.metrics)} metrics failed: broken: ")
    assert "Conversion Error" in description
    # Every other metric and its anomaly scores are stored; the broken one has nothing.
    for m in project.metrics:
        for area in ("metrics", "anomalies"):
            key = dg.AssetKey([area, m.spec.name])
            assert instance.get_latest_materialization_event(key) is not None, key
    for area in ("metrics", "anomalies"):
        assert instance.get_latest_materialization_event(dg.AssetKey([area, "broken"])) is None
    assert query(project, "SELECT DISTINCT hour FROM metrics.error_rate") == [(HOUR_A,)]
