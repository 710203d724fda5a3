"""Anomaly assets through Dagster: scores in the warehouse, the WARN check, alerts delivered."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.runs import run_ingest, run_metrics_range
from loglens_pipeline_tests.conftest import query, shipped_test_instance, write_project
from loglens_pipeline_tests.defs.test_metric_assets import write_events

HOURS = 14


@pytest.fixture(scope="module")
def hook():
    """A real webhook receiver on 127.0.0.1 that keeps every JSON body it gets."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One real instance for the module: the incident is computed once for all its tests."""
    yield from shipped_test_instance(tmp_path_factory.mktemp("dagster_home"))


@pytest.fixture(scope="module")
def incident(tmp_path_factory, instance, hook):
    url, _ = hook
    os.environ["LOGLENS_TEST_HOOK"] = url
    tmp_path = tmp_path_factory.mktemp("incident")

    def with_alerts(data: dict) -> None:
        data["alerts"] = {
            "channels": [{"name": "hook", "type": "webhook", "url_env": "LOGLENS_TEST_HOOK"}]
        }

    project = write_project(tmp_path, with_alerts)
    last = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(
        hours=1
    )
    first = last - timedelta(hours=HOURS - 1)
    for i in range(HOURS):
        hour = first + timedelta(hours=i)
        write_events(project, f"h{i}", hour, 240, errors=120 if hour == last else 0)
    defs = build_definitions(project)
    assert run_ingest(defs, instance, trigger="test").success
    result = run_metrics_range(defs, instance, first, last, trigger="test")
    assert result.success
    yield project, defs, first, last, result
    os.environ.pop("LOGLENS_TEST_HOOK", None)


def test_the_incident_hour_is_flagged_and_nothing_before_it(incident):
    project, _, _first, last, _ = incident
    flagged = query(
        project,
        "SELECT DISTINCT hour, service FROM anomalies.error_rate WHERE is_anomaly ORDER BY 2",
    )
    assert flagged == [(last, "cart"), (last, "search")]
    scored = query(
        project,
        "SELECT count(*), count(*) FILTER (detector = 'robust') FROM anomalies.error_rate",
    )[0]
    assert scored[0] == HOURS * 12 * 2 and scored[1] > 0
    row = query(
        project,
        "SELECT value, expected, lower, upper, score FROM anomalies.error_rate "
        "WHERE is_anomaly ORDER BY score DESC LIMIT 1",
    )[0]
    value, expected, lower, upper, score = row
    assert value > upper and lower <= expected <= upper and score > 4


def test_the_check_warns_for_the_incident_partition_only(incident):
    _, _, _, _last, result = incident
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.asset_key == dg.AssetKey(["anomalies", "error_rate"])
    ]
    assert len(evaluations) == 1, "one single-run backfill, one evaluation"
    evaluation = evaluations[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "service=" not in evaluation.description
    assert "search" in evaluation.metadata["worst_points"].value


def test_rescoring_an_hour_replaces_it(incident, instance):
    project, defs, _, last, _ = incident
    before = query(project, "SELECT * FROM anomalies.error_rate ORDER BY ALL")
    job = defs.resolve_job_def("metrics_job")
    assert job.execute_in_process(instance=instance, partition_key=partition_key(last)).success
    assert query(project, "SELECT * FROM anomalies.error_rate ORDER BY ALL") == before


def test_the_alert_sensor_sends_one_grouped_message_and_records_it(incident, instance, hook):
    project, defs, _, _last, _ = incident
    _, received = hook
    sensor = defs.resolve_sensor_def("anomaly_alert_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        tick = sensor.evaluate_tick(context)
    [request] = tick.run_requests
    assert "error_rate" in request.tags["loglens/metrics"]
    run = defs.resolve_job_def("alerts_job").execute_in_process(
        instance=instance, run_config=request.run_config
    )
    assert run.success
    error_rate = [m for m in received if m.get("metric") == "error_rate"]
    assert len(error_rate) >= 1
    sent = query(
        project,
        "SELECT count(*) FROM raw.alert_history WHERE metric = 'error_rate' AND status = 'sent'",
    )
    assert sent[0][0] >= 1
    # The same anomalies again: nothing is sent twice.
    before = len(received)
    assert (
        defs.resolve_job_def("alerts_job")
        .execute_in_process(instance=instance, run_config=request.run_config)
        .success
    )
    assert len(received) == before
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=tick.cursor) as ctx:
        assert sensor.evaluate_tick(ctx).run_requests == []


def test_the_materialization_shows_a_chart_of_the_day(incident):
    *_, result = incident
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["anomalies", "error_rate"])
    ][-1:]
    metadata = event.materialization.metadata
    assert metadata["chart"].value.startswith("![error_rate service=")
    assert "data:image/png;base64,iVBOR" in metadata["chart"].value  # a PNG
    assert metadata["anomalies"].value >= 2
    # Hours without an anomaly say so instead of drawing a chart.
    quiet = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "anomalies" and e.materialization.metadata["anomalies"].value == 0
    ]
    assert quiet, "some metric has no anomaly in the incident's runs"
    assert {m["chart"].value for m in quiet} == {"_no point outside its band: no chart_"}


def test_the_check_alone_scores_the_hour_without_storing_it(incident, instance):
    project, defs, _first, last, _ = incident
    key = dg.AssetKey(["anomalies", "error_rate"])
    check = dg.AssetCheckKey(key, "no_anomalies")
    stored = query(project, "SELECT count(*) FROM anomalies.error_rate")
    materialized = instance.get_latest_materialization_event(key).run_id
    job = defs.resolve_job_def("metrics_job").get_subset(
        asset_selection=set(), asset_check_selection={check}
    )
    result = job.execute_in_process(instance=instance, partition_key=partition_key(last))
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.asset_check_key == check
    assert not evaluation.passed
    assert "points outside the expected band" in evaluation.description
    assert result.get_asset_materialization_events() == []
    assert query(project, "SELECT count(*) FROM anomalies.error_rate") == stored
    assert instance.get_latest_materialization_event(key).run_id == materialized


def test_without_channels_the_alert_sensor_skips_and_moves_on(incident, instance, tmp_path):
    # After the incident's runs: new anomaly scores are in the event log.
    quiet = build_definitions(write_project(tmp_path, lambda data: data.pop("alerts", None)))
    sensor = quiet.resolve_sensor_def("anomaly_alert_sensor")
    with dg.build_sensor_context(instance=instance, definitions=quiet) as context:
        tick = sensor.evaluate_tick(context)
    assert tick.run_requests == []
    assert "no alerts.channels" in tick.skip_message
    assert tick.cursor, "the scores seen are not offered again"
    with dg.build_sensor_context(instance=instance, definitions=quiet, cursor=tick.cursor) as ctx:
        assert sensor.evaluate_tick(ctx).skip_message == "no new anomaly scores"
