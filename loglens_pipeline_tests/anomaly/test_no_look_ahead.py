"""No look-ahead: a point's score depends only on points before it, within the baseline."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from loglens_pipeline.anomaly import score_points
from loglens_pipeline.config.metrics import AnomalySpec
from loglens_pipeline_tests.anomaly.helpers import FIVE_MINUTES, frame, seasonal_values

HOUR = timedelta(hours=1)
PER_DAY_5M = 288
COLUMNS = ["expected", "lower", "upper", "score"]


def weekly_hourly_series(days: int, seed: int = 11) -> pd.DataFrame:
    """Hourly points with a daily cycle, quieter weekends, spikes and a few gaps."""
    values = seasonal_values(days, step=HOUR, noise=2.0, seed=seed)
    weekday = (np.arange(values.size) // 24) % 7
    values = np.where(weekday >= 5, 0.7 * values, values)
    rng = np.random.default_rng(seed)
    values[rng.choice(values.size, 6, replace=False)] += 40.0
    series = frame(values, step=HOUR)
    return series.drop(index=rng.choice(values.size, 15, replace=False)).reset_index(drop=True)


SPECS = [
    pytest.param(AnomalySpec(method="zscore", baseline="7d"), HOUR, id="zscore"),
    pytest.param(AnomalySpec(method="robust", baseline="7d"), HOUR, id="robust"),
    pytest.param(AnomalySpec(method="seasonal", baseline="7d"), HOUR, id="seasonal-daily"),
    pytest.param(AnomalySpec(method="seasonal", baseline="29d"), HOUR, id="seasonal-weekly"),
]


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    np.testing.assert_allclose(a[COLUMNS].to_numpy(), b[COLUMNS].to_numpy(), rtol=1e-9)
    assert list(a.is_anomaly) == list(b.is_anomaly)
    assert list(a.detector) == list(b.detector)


@pytest.mark.parametrize(("spec", "step"), SPECS)
def test_later_points_change_nothing(spec, step):
    series = weekly_hourly_series(40)
    history, new = series.iloc[:500], series.iloc[500:]
    full = score_points(history, new, spec, step=step)
    for cut in (1, 7, 60):
        prefix = score_points(history, new.iloc[:cut], spec, step=step)
        _assert_same(prefix, full.iloc[:cut])
    # whatever the later points are, the earlier ones score the same
    changed = new.copy()
    changed.loc[changed.index[60:], "value"] = 1e6
    _assert_same(score_points(history, changed, spec, step=step).iloc[:60], full.iloc[:60])
    if spec.method == "seasonal" and spec.baseline == "29d":
        assert (full.detector == "seasonal").any()


@pytest.mark.parametrize(("spec", "step"), SPECS)
def test_one_call_equals_hour_by_hour_runs(spec, step):
    series = weekly_hourly_series(36)
    first_new = 700
    batch = score_points(series.iloc[:first_new], series.iloc[first_new:], spec, step=step)
    parts = []
    for end in range(first_new, len(series), 3):  # live runs of three points at a time
        part = series.iloc[end : end + 3]
        parts.append(score_points(series.iloc[:end], part, spec, step=step))
    _assert_same(pd.concat(parts), batch)


@pytest.mark.parametrize("method", ["zscore", "robust", "seasonal"])
def test_points_older_than_the_baseline_change_nothing(method):
    values = seasonal_values(16, noise=2.0, seed=2)
    series = frame(values)
    spec = AnomalySpec(method=method, baseline="8d")
    new = series.iloc[15 * PER_DAY_5M :]
    full = score_points(series.iloc[: 15 * PER_DAY_5M], new, spec, step=FIVE_MINUTES)
    # drop or wreck every point more than 8 days before the first new point
    old = series.ts < new.ts.iloc[0] - timedelta(days=8)
    wrecked = series.iloc[: 15 * PER_DAY_5M].copy()
    wrecked.loc[old[: 15 * PER_DAY_5M], "value"] = -1e9
    _assert_same(score_points(wrecked, new, spec, step=FIVE_MINUTES), full)
    trimmed = series.iloc[: 15 * PER_DAY_5M][~old[: 15 * PER_DAY_5M]]
    _assert_same(score_points(trimmed, new, spec, step=FIVE_MINUTES), full)


def test_the_point_itself_is_never_in_its_baseline():
    values = [12.0, 10.0] * 15 + [1e6]
    history, new = frame(values).iloc[:30], frame(values).iloc[30:]
    row = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES).iloc[0]
    assert row.expected == pytest.approx(11.0)  # a baseline with 1e6 in it would say 12
