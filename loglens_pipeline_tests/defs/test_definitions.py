"""The shipped configs produce the asset graph, sensors and jobs users see in the UI."""

from __future__ import annotations

import dagster as dg

from loglens_pipeline.config import ProjectPaths
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.project import Project


def shipped_defs(tmp_path) -> dg.Definitions:
    return build_definitions(Project.load(ProjectPaths(REPO_ROOT / "configs", tmp_path / "data")))


def test_shipped_graph(tmp_path):
    defs = shipped_defs(tmp_path)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {"sources/app", "sources/nginx", "raw/events"}
    assert [s.name for s in defs.sensors] == ["log_file_sensor"]
    assert [j.name for j in defs.jobs] == ["ingest_job"]
    graph = defs.resolve_asset_graph()
    raw = graph.get(dg.AssetKey(["raw", "events"]))
    assert raw.parent_keys == {dg.AssetKey(["sources", "app"]), dg.AssetKey(["sources", "nginx"])}
    assert raw.group_name == "ingest"
    assert raw.pools == {"warehouse"}


def test_loading_definitions_does_not_touch_the_warehouse(tmp_path):
    shipped_defs(tmp_path)
    assert not (tmp_path / "data").exists()


def test_sensor_runs_by_default_and_says_what_it_watches(tmp_path):
    sensor = shipped_defs(tmp_path).resolve_sensor_def("log_file_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert str(tmp_path / "data" / "logs") in sensor.description
    assert sensor.minimum_interval_seconds == 5
