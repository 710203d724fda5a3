"""A bad `configs/metrics.yaml` is refused at load time, naming file, metric, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loglens_pipeline.config import ConfigError, ProjectPaths
from loglens_pipeline.defs.project import Project
from loglens_pipeline_tests.conftest import SHIPPED_CONFIGS, write_project

NAME = "bad_metric"
VALID = {
    "name": "fine_metric",
    "description": "A valid metric before the bad one, so the index matters.",
    "source": "app",
    "aggregation": "count",
    "window": "1m",
}
BASE = {
    "name": NAME,
    "description": "The metric under test.",
    "source": "app",
    "aggregation": "count",
    "window": "5m",
}


def load_errors(tmp_path: Path, metrics: list[dict]) -> tuple[ConfigError, Path]:
    """Load a copy of the shipped project whose metrics.yaml is `metrics`; return the error."""
    write_project(tmp_path)
    file = tmp_path / "configs" / "metrics.yaml"
    file.write_text(yaml.safe_dump({"metrics": metrics}, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        Project.load(ProjectPaths(tmp_path / "configs", tmp_path / "data"))
    return info.value, file


def bad_metric_error(tmp_path: Path, **changes) -> tuple[str, str]:
    """The single error for BASE with `changes` (None removes a key), and its expected prefix."""
    metric = {**BASE, **changes}
    metric = {key: value for key, value in metric.items() if value is not None}
    error, file = load_errors(tmp_path, [VALID, metric])
    assert len(error.problems) == 1, error.problems
    text = str(error)
    assert "fine_metric" not in text
    return text, f"{file}: metrics[1] ({NAME})"


def test_shipped_metrics_load(tmp_path):
    project = write_project(tmp_path)
    shipped = yaml.safe_load((SHIPPED_CONFIGS / "metrics.yaml").read_text())["metrics"]
    assert [m.spec.name for m in project.metrics] == [m["name"] for m in shipped]


def test_unknown_key(tmp_path):
    text, where = bad_metric_error(tmp_path, colour="blue")
    assert f"{where}.colour: unknown key" in text


def test_missing_description(tmp_path):
    text, where = bad_metric_error(tmp_path, description=None)
    assert f"{where}.description: missing required key" in text


def test_empty_description(tmp_path):
    text, where = bad_metric_error(tmp_path, description="")
    assert f"{where}.description: String should have at least 1 character" in text


def test_window_of_a_day_is_refused_for_hourly_partitions(tmp_path):
    text, where = bad_metric_error(tmp_path, window="1d")
    assert f"{where}.window.size: window size '1d' is longer than an hour" in text
    assert "metrics are hourly partitions" in text


def test_window_must_divide_an_hour(tmp_path):
    text, where = bad_metric_error(tmp_path, window="7m")
    assert f"{where}.window.size: window size '7m' must divide an hour evenly" in text


def test_sliding_step_must_divide_an_hour(tmp_path):
    text, where = bad_metric_error(tmp_path, window={"size": "15m", "step": "7m"})
    assert f"{where}.window.step: window step '7m' must divide an hour evenly" in text


def test_sliding_size_must_be_a_multiple_of_the_step(tmp_path):
    text, where = bad_metric_error(tmp_path, window={"size": "15m", "step": "10m"})
    assert f"{where}.window: window size 15m must be a multiple of its step 10m" in text


def test_percentile_without_p(tmp_path):
    text, where = bad_metric_error(tmp_path, aggregation="percentile", field="latency_ms")
    assert f"{where}.p: aggregation 'percentile' needs 'p' (e.g. 0.95)" in text


def test_ratio_without_numerator(tmp_path):
    text, where = bad_metric_error(tmp_path, aggregation="ratio")
    assert f"{where}.numerator: aggregation 'ratio' needs a 'numerator' filter" in text


def test_field_on_count(tmp_path):
    text, where = bad_metric_error(tmp_path, field="latency_ms")
    assert f"{where}.field: aggregation 'count' takes no 'field'" in text


def test_sum_over_a_string_field(tmp_path):
    text, where = bad_metric_error(tmp_path, aggregation="sum", field="user_id")
    assert f"{where}.field: 'user_id' is a string field; 'sum' needs a number" in text


def test_unknown_source(tmp_path):
    text, where = bad_metric_error(tmp_path, source="kafka")
    assert f"{where}.source: unknown source 'kafka'; sources: app, nginx" in text


def test_unknown_field_in_filter_is_named(tmp_path):
    text, where = bad_metric_error(tmp_path, filter="level = 'ERROR' and colour = 'red'")
    assert f"{where}.filter: metric '{NAME}' filter: unknown field colour" in text


def test_field_of_another_source_is_unknown(tmp_path):
    # `method` is a field of the nginx preset; the app source calls it http.method.
    text, where = bad_metric_error(tmp_path, filter="method = 'GET'")
    assert f"{where}.filter: metric '{NAME}' filter: unknown field method" in text


def test_hostile_filter_is_refused(tmp_path):
    text, where = bad_metric_error(tmp_path, filter="read_csv('/etc/passwd') is not null")
    assert f"{where}.filter: metric '{NAME}' filter: function read_csv is not allowed" in text


def test_filter_with_a_semicolon_is_refused(tmp_path):
    text, where = bad_metric_error(tmp_path, filter="level = 'ERROR'; DROP TABLE raw.events")
    assert f"{where}.filter: metric '{NAME}' filter: semicolons and multiple statements" in text


def test_group_by_unknown_field(tmp_path):
    text, where = bad_metric_error(tmp_path, group_by=["service", "colour"])
    assert f"{where}.group_by[1]: metric '{NAME}' group_by[1]: unknown field colour" in text


def test_duplicate_metric_name(tmp_path):
    error, file = load_errors(tmp_path, [VALID, BASE, {**BASE, "window": "1m"}])
    assert f"{file}: metrics[2] ({NAME}).name: metric name is used twice" in str(error)


def test_invalid_owner(tmp_path):
    text, where = bad_metric_error(tmp_path, owner="bob")
    assert f"{where}.owner: String should match pattern" in text
    assert "(got 'bob')" in text


def test_invalid_baseline_duration(tmp_path):
    text, where = bad_metric_error(tmp_path, anomaly={"baseline": "7 weeks"})
    assert f"{where}.anomaly.baseline: invalid duration '7 weeks'" in text


def test_unknown_anomaly_method(tmp_path):
    text, where = bad_metric_error(tmp_path, anomaly={"method": "magic"})
    assert (
        f"{where}.anomaly.method: Input should be 'zscore', 'robust' or 'seasonal' (got 'magic')"
        in text
    )


def test_compile_errors_of_several_metrics_are_all_reported(tmp_path):
    metrics = [
        {**BASE, "name": "first", "filter": "colour = 'red'"},
        VALID,
        {**BASE, "name": "third", "source": "kafka"},
    ]
    error, file = load_errors(tmp_path, metrics)
    assert [key for _, key, _ in error.problems] == [
        "metrics[0] (first).filter",
        "metrics[2] (third).source",
    ]
    assert str(error).startswith("2 configuration errors:")
    assert all(path == str(file) for path, _, _ in error.problems)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"aggregation": "percentile", "field": "latency_ms"}, "p"),
        ({"aggregation": "ratio"}, "numerator"),
        ({"field": "latency_ms"}, "field"),
    ],
    ids=["percentile-without-p", "ratio-without-numerator", "field-on-count"],
)
def test_cross_key_errors_name_the_offending_key(tmp_path, changes, key):
    text, where = bad_metric_error(tmp_path, **changes)
    assert f"{where}.{key}: " in text


def test_duplicate_metric_name_names_the_second_metric(tmp_path):
    error, file = load_errors(tmp_path, [VALID, BASE, {**BASE, "window": "1m"}])
    assert f"{file}: metrics[2] ({NAME}).name: " in str(error)
