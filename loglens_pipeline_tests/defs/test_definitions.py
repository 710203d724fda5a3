"""The shipped configs produce the asset graph, sensors, schedules and jobs users see in the UI.

This is the graph's snapshot: a change to the shipped configs or the wiring shows up here as a
visible diff.
"""

from __future__ import annotations

import dagster as dg
import pytest

from loglens_pipeline.config import ProjectPaths
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.project import Project
from loglens_pipeline_tests.conftest import write_project

SHIPPED_METRICS = [
    "checkout_avg_latency",
    "edge_5xx_rate",
    "edge_requests_per_second",
    "error_rate",
    "latency_p95",
    "latency_p99",
    "log_volume_by_level",
    "payments_error_rate_15m",
    "requests_per_service",
    "unique_users",
]


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    data = tmp_path_factory.mktemp("shipped") / "data"
    return build_definitions(Project.load(ProjectPaths(REPO_ROOT / "configs", data)))


def test_shipped_asset_graph(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    snapshot = {
        key.to_user_string(): (
            graph.get(key).group_name,
            type(graph.get(key).partitions_def).__name__ if graph.get(key).partitions_def else None,
            sorted(k.to_user_string() for k in graph.get(key).parent_keys),
        )
        for key in graph.get_all_asset_keys()
    }
    expected = {
        "sources/app": ("sources", None, []),
        "sources/nginx": ("sources", None, []),
        "raw/events": ("ingest", None, ["sources/app", "sources/nginx"]),
        "raw/event_hours": ("ingest", "HourlyPartitionsDefinition", ["raw/events"]),
    }
    for name in SHIPPED_METRICS:
        expected[f"metrics/{name}"] = ("metrics", "HourlyPartitionsDefinition", ["raw/event_hours"])
    for name in SHIPPED_METRICS:
        expected[f"anomalies/{name}"] = (
            "anomalies",
            "HourlyPartitionsDefinition",
            [f"metrics/{name}"],
        )
    expected["warehouse/reader_copy"] = (
        "warehouse",
        None,
        sorted(
            [
                "raw/events",
                "warehouse/retention",
                *(f"metrics/{n}" for n in SHIPPED_METRICS),
                *(f"anomalies/{n}" for n in SHIPPED_METRICS),
            ]
        ),
    )
    expected["warehouse/retention"] = ("warehouse", None, [])
    assert snapshot == expected


def test_shipped_sensors_schedules_jobs(defs):
    assert sorted(s.name for s in defs.sensors) == [
        "anomaly_alert_sensor",
        "log_file_sensor",
        "loglens_automation_sensor",
    ]
    assert sorted(s.name for s in defs.schedules) == [
        "daily_retention_schedule",
        "hourly_metrics_schedule",
    ]
    assert sorted(j.name for j in defs.jobs) == [
        "alerts_job",
        "ingest_job",
        "metrics_job",
        "publish_reader_job",
        "replay_quarantine_job",
        "retention_job",
    ]


def test_metric_assets_carry_what_the_ui_shows(defs):
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["metrics", "error_rate"]))
    assert node.owners == ["team:sre"]
    assert node.tags["tier"] == "gold" and node.tags["loglens/metric"] == "error_rate"
    assert node.kinds == {"duckdb"}
    assert node.pools == {"warehouse"}
    assert node.code_version and len(node.code_version) == 16
    assert "Share of requests answered with a 5xx status" in node.description
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.automation_condition is not None
    hourly = node.partitions_def
    assert hourly.timezone == "UTC" and hourly.start.year == 2026
    assert graph.get(dg.AssetKey(["raw", "events"])).pools == {"warehouse"}


def test_loading_definitions_does_not_touch_the_warehouse(tmp_path):
    build_definitions(Project.load(ProjectPaths(REPO_ROOT / "configs", tmp_path / "data")))
    assert not (tmp_path / "data").exists()


def test_sensors_and_schedule_run_by_default_and_say_what_they_watch(defs):
    sensor = defs.resolve_sensor_def("log_file_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert "/data/logs" in sensor.description
    assert sensor.minimum_interval_seconds == 3
    automation = defs.resolve_sensor_def("loglens_automation_sensor")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    assert automation.minimum_interval_seconds < 5  # a tick in every pass of the daemon
    schedule = defs.resolve_schedule_def("hourly_metrics_schedule")
    assert schedule.cron_schedule == "15 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_every_metric_has_an_anomaly_check(defs):
    graph = defs.resolve_asset_graph()
    checks = {key.asset_key.to_user_string(): key.name for key in graph.asset_check_keys}
    assert checks == {f"anomalies/{name}": "no_anomalies" for name in SHIPPED_METRICS}


def test_every_asset_has_description_owner_tags_kinds_and_code_version(defs):
    graph = defs.resolve_asset_graph()
    lacking = {
        key.to_user_string(): [
            attribute
            for attribute in ("description", "owners", "tags", "kinds", "code_version")
            if not getattr(graph.get(key), attribute)
        ]
        for key in graph.get_all_asset_keys()
    }
    assert {key: missing for key, missing in lacking.items() if missing} == {}


def test_ingestion_code_version_follows_the_parsing_of_sources(tmp_path):
    def versions(overrides=None) -> dict[str, str]:
        project = write_project(tmp_path / str(len(list(tmp_path.iterdir()))), overrides)
        graph = build_definitions(project).resolve_asset_graph()
        return {
            key.to_user_string(): graph.get(key).code_version
            for key in graph.get_all_asset_keys()
            if key.path[0] in ("raw", "sources")
        }

    def float_status(data: dict) -> None:
        app = next(s for s in data["sources"] if s["name"] == "app")
        app["fields"]["status"] = "float"

    before, after = versions(), versions(float_status)
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == ["raw/event_hours", "raw/events", "sources/app"]
