"""Behaviour of `score_points`: flags, settings, fallbacks and irregular series."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from loglens_pipeline.anomaly import (
    DETECTORS,
    RESULT_COLUMNS,
    Detector,
    Estimate,
    score_groups,
    score_points,
)
from loglens_pipeline.config.metrics import AnomalySpec
from loglens_pipeline_tests.anomaly.helpers import (
    FIVE_MINUTES,
    START,
    frame,
    seasonal_values,
    split,
)

PER_DAY = 288


def noisy(n: int, *, level: float = 100.0, noise: float = 2.0, seed: int = 1) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, noise, n)


def test_result_columns_index_and_extra_columns_are_kept():
    series = frame(noisy(60)).assign(service="api")
    series.index = [f"r{i}" for i in range(60)]
    history, new = series.iloc[:50], series.iloc[50:]
    out = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    assert list(out.index) == list(new.index)
    assert list(out.columns) == ["ts", "value", "service", *RESULT_COLUMNS]
    assert out.is_anomaly.dtype == bool
    assert (out.service == "api").all()


@pytest.mark.parametrize("method", ["zscore", "robust", "seasonal"])
def test_a_spike_is_flagged_and_quiet_points_are_not(method):
    # a flat noisy series for the window methods, a daily cycle for seasonal
    days = 9
    values = seasonal_values(days) if method == "seasonal" else noisy(days * PER_DAY)
    values[8 * PER_DAY + 100] += 40.0  # +20 sigma
    history, new = split(frame(values), 8 * PER_DAY)
    out = score_points(history, new, AnomalySpec(method=method, threshold=4.5), step=FIVE_MINUTES)
    assert out.is_anomaly.iloc[100]
    assert out.detector.iloc[100] == method
    assert out.is_anomaly.sum() == 1


def peaky(days: int, seed: int = 3) -> np.ndarray:
    """Quiet nights and mornings at 20, a two-hour-wide peak to 100 at 14:00, noise 2."""
    hours = (np.arange(days * PER_DAY) % PER_DAY) / 12.0
    shape = 20.0 + 80.0 * np.exp(-0.5 * ((hours - 14.0) / 2.0) ** 2)
    return shape + np.random.default_rng(seed).normal(0.0, 2.0, shape.size)


def test_daily_peaks_are_normal_for_seasonal_but_not_for_robust():
    history, new = split(frame(peaky(9)), 8 * PER_DAY)
    seasonal = score_points(history, new, AnomalySpec(method="seasonal"), step=FIVE_MINUTES)
    robust = score_points(history, new, AnomalySpec(method="robust"), step=FIVE_MINUTES)
    peak = new.value > 90
    assert peak.any()
    assert not seasonal.is_anomaly.any()
    assert robust.is_anomaly[peak].all()


def test_a_weekday_pattern_is_learned_once_three_weeks_are_available():
    # weekends at 60% of weekdays; 4 weeks of history, then a week scored with a 28d baseline
    values = seasonal_values(35, noise=1.0, seed=4)
    weekday = (np.arange(values.size) // PER_DAY) % 7
    values = np.where(weekday >= 5, 0.6 * values, values)
    history, new = split(frame(values), 28 * PER_DAY)
    spec = AnomalySpec(method="seasonal", baseline="28d", threshold=4.5)
    out = score_points(history, new, spec, step=FIVE_MINUTES)
    assert (out.detector == "seasonal").all()
    assert not out.is_anomaly.any()


@pytest.mark.parametrize(
    ("direction", "flags_up", "flags_down"),
    [("up", True, False), ("down", False, True), ("both", True, True)],
)
def test_direction(direction, flags_up, flags_down):
    values = noisy(60)
    values[55] = 150.0
    values[57] = 50.0
    history, new = split(frame(values), 50)
    out = score_points(history, new, AnomalySpec(direction=direction), step=FIVE_MINUTES)
    assert out.is_anomaly.iloc[5] == flags_up
    assert out.is_anomaly.iloc[7] == flags_down
    assert out.score.iloc[5] > 0 > out.score.iloc[7]  # the score keeps its sign either way
    assert out.is_anomaly.sum() == flags_up + flags_down


def test_min_change_silences_tiny_absolute_changes():
    values = np.full(40, 0.001)
    values[::2] = 0.0012  # a tiny series: 0.001 / 0.0012
    values[-1] = 0.004  # far outside the band, but only 0.003 above
    history, new = split(frame(values), 39)
    loud = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    quiet = score_points(history, new, AnomalySpec(min_change=0.01), step=FIVE_MINUTES)
    assert loud.is_anomaly.iloc[0]
    assert not quiet.is_anomaly.iloc[0]
    assert quiet.score.iloc[0] == loud.score.iloc[0]  # only the flag changes


def test_min_history():
    values = noisy(20)
    values[-1] = 500.0
    history, new = split(frame(values), 5)  # new points 5..19: baselines of 5..19 points
    out = score_points(history, new, AnomalySpec(min_history=12), step=FIVE_MINUTES)
    early, late = out.iloc[:7], out.iloc[7:]  # points 5..11 have 5..11 earlier points
    assert (early.detector == "insufficient_history").all()
    assert early.expected.isna().all() and early.lower.isna().all() and early.score.isna().all()
    assert not early.is_anomaly.any()
    assert (late.detector == "robust").all()
    assert out.is_anomaly.iloc[-1]


def test_baseline_duration_limits_the_history():
    # 2 hours of history, baseline 1h: only the last 12 points count
    values = np.concatenate([np.full(12, 1000.0), noisy(12), [100.0]])
    history, new = split(frame(values), 24)
    short = score_points(history, new, AnomalySpec(baseline="1h"), step=FIVE_MINUTES)
    assert short.expected.iloc[0] == pytest.approx(np.median(values[12:24]))


def test_disabled_spec_scores_nothing():
    history, new = split(frame(noisy(30)), 20)
    out = score_points(history, new, AnomalySpec(enabled=False), step=FIVE_MINUTES)
    assert (out.detector == "disabled").all() and not out.is_anomaly.any()
    assert out.expected.isna().all()


# ------------------------------------------------------------------ irregular series


def test_gaps_in_history_and_new_points():
    values = noisy(200)
    series = frame(values).drop(index=list(range(40, 90)) + list(range(150, 170)))
    series.loc[195, "value"] = 300.0
    history, new = (
        series[series.ts < START + 120 * FIVE_MINUTES],
        series[series.ts >= START + 120 * FIVE_MINUTES],
    )
    out = score_points(history, new, AnomalySpec(threshold=5), step=FIVE_MINUTES)
    assert out.loc[195, "is_anomaly"]
    assert out.is_anomaly.sum() == 1
    assert np.isfinite(out.expected).all()


def test_seasonal_after_a_day_long_gap_still_scores():
    values = seasonal_values(9, noise=2.0, seed=6)
    series = frame(values).drop(index=range(5 * PER_DAY, 6 * PER_DAY))  # day 5 missing
    history, new = series[series.index < 8 * PER_DAY], series[series.index >= 8 * PER_DAY]
    spec = AnomalySpec(method="seasonal", threshold=4.5)
    out = score_points(history, new, spec, step=FIVE_MINUTES)
    assert (out.detector == "seasonal").all()
    assert not out.is_anomaly.any()


def test_duplicated_timestamps_in_new_are_each_scored_against_earlier_points():
    values = noisy(40)
    history, new = split(frame(values), 30)
    twice = pd.concat([new.iloc[:3], new.iloc[[2]].assign(value=400.0), new.iloc[3:]])
    out = score_points(history, twice, AnomalySpec(), step=FIVE_MINUTES)
    assert len(out) == len(twice)
    same_time = out[out.ts == new.ts.iloc[2]]
    assert len(same_time) == 2
    assert same_time.expected.nunique() == 1  # same baseline: neither sees the other
    assert list(same_time.is_anomaly) == [False, True]
    # later points see the mean of the two duplicates as one point
    mean = new.copy()
    mean.loc[2, "value"] = (new.value.iloc[2] + 400.0) / 2
    single = score_points(history, mean, AnomalySpec(), step=FIVE_MINUTES)
    np.testing.assert_allclose(out.expected.iloc[4:], single.expected.iloc[3:])
    np.testing.assert_allclose(out.upper.iloc[4:], single.upper.iloc[3:])


def test_history_rows_at_new_timestamps_are_replaced_by_the_new_rows():
    values = noisy(40)
    series = frame(values)
    history = series.copy()  # history already holds the new hour, with stale values
    history.loc[30:, "value"] = 10_000.0
    new = series.iloc[30:]
    fresh = score_points(series.iloc[:30], new, AnomalySpec(), step=FIVE_MINUTES)
    overlapping = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    pd.testing.assert_frame_equal(fresh, overlapping)


def test_nan_values_are_kept_unflagged_and_skipped_in_baselines():
    values = noisy(40)
    values[35] = np.nan
    values[36] = 500.0
    history, new = split(frame(values), 30)
    out = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    assert np.isnan(out.score.iloc[5]) and not out.is_anomaly.iloc[5]
    assert np.isfinite(out.expected.iloc[5])  # the band is still there for a chart
    assert out.is_anomaly.iloc[6]


def test_all_nan_history():
    history = frame([np.nan] * 30)
    new = frame([1.0], start=history.ts.iloc[-1] + FIVE_MINUTES)
    out = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    assert out.detector.iloc[0] == "insufficient_history"


@pytest.mark.parametrize("method", ["zscore", "robust", "seasonal"])
def test_a_single_point_and_no_points(method):
    spec = AnomalySpec(method=method)
    one = score_points(frame([]), frame([5.0]), spec, step=FIVE_MINUTES)
    assert one.detector.iloc[0] == "insufficient_history" and not one.is_anomaly.iloc[0]
    none = score_points(frame(noisy(30)), frame([]), spec, step=FIVE_MINUTES)
    assert none.empty and list(none.columns) == ["ts", "value", *RESULT_COLUMNS]


def test_seasonal_falls_back_to_robust_for_off_grid_points():
    values = seasonal_values(9)
    history, new = split(frame(values), 8 * PER_DAY)
    new = new.assign(ts=new.ts + timedelta(minutes=2))  # not on the 5-minute grid
    out = score_points(history, new, AnomalySpec(method="seasonal"), step=FIVE_MINUTES)
    assert (out.detector == "robust").all()


def test_seasonal_falls_back_to_robust_while_history_is_short():
    values = seasonal_values(4)
    history, new = split(frame(values), PER_DAY)
    out = score_points(history, new, AnomalySpec(method="seasonal"), step=FIVE_MINUTES)
    days = np.arange(len(new)) // PER_DAY + 1  # earlier days available to each point
    assert (out.detector[days < 2] == "robust").all()
    # the last minutes of day 2 see the first minutes of day 0, within the smoothing window
    assert (out.detector[(days == 2)].iloc[:-3] == "robust").all()
    assert (out.detector[days >= 3] == "seasonal").all()


def test_seasonal_with_a_baseline_too_short_for_three_days_is_robust():
    values = seasonal_values(9)
    history, new = split(frame(values), 8 * PER_DAY)
    spec = AnomalySpec(method="seasonal", baseline="2d")
    out = score_points(history, new, spec, step=FIVE_MINUTES)
    assert (out.detector == "robust").all()


def test_timezone_aware_timestamps_are_read_as_utc():
    values = noisy(40)
    history, new = split(frame(values), 30)
    naive = score_points(history, new, AnomalySpec(), step=FIVE_MINUTES)
    aware_history = history.assign(
        ts=history.ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    )
    aware_new = new.assign(ts=new.ts.dt.tz_localize("UTC"))
    aware = score_points(aware_history, aware_new, AnomalySpec(), step=FIVE_MINUTES)
    np.testing.assert_allclose(aware.expected, naive.expected)


def test_missing_timestamps_and_bad_step_are_errors():
    history, new = split(frame(noisy(20)), 10)
    with pytest.raises(ValueError, match="missing timestamps"):
        score_points(history, new.assign(ts=pd.NaT), AnomalySpec(), step=FIVE_MINUTES)
    with pytest.raises(ValueError, match="step must be positive"):
        score_points(history, new, AnomalySpec(), step=timedelta(0))


def test_score_groups_scores_each_series_on_its_own_history():
    a, b = frame(noisy(40, level=100.0)), frame(noisy(40, level=5.0, noise=0.1))
    series = pd.concat([a.assign(service="a"), b.assign(service="b")], ignore_index=True)
    series.loc[39, "value"] = 130.0  # a spike in a only
    history, new = (
        series[series.ts < START + 30 * FIVE_MINUTES],
        series[series.ts >= START + 30 * FIVE_MINUTES],
    )
    out = score_groups(history, new, AnomalySpec(), step=FIVE_MINUTES, by=["service"])
    assert list(out.index) == list(new.index)
    assert out.loc[39, "is_anomaly"] and out.is_anomaly.sum() == 1
    assert out[out.service == "b"].expected.between(4.5, 5.5).all()


def test_a_new_detector_is_one_class_and_one_registry_entry(monkeypatch):
    class LastValue(Detector):
        """Expects the previous point, with a spread of 1."""

        name = "last_value"

        def estimate(self, ctx):
            expected = ctx.values[ctx.hi - 1]
            return Estimate(
                expected, np.ones(ctx.targets.size), np.full(ctx.targets.size, self.name, object)
            )

    monkeypatch.setitem(DETECTORS, "last_value", LastValue())
    spec = AnomalySpec().model_copy(update={"method": "last_value", "min_history": 2})
    history, new = split(frame([1.0, 2.0, 3.0, 10.0]), 2)
    out = score_points(history, new, spec, step=FIVE_MINUTES)
    assert list(out.expected) == [2.0, 3.0]
    assert list(out.is_anomaly) == [False, True]
    assert (out.detector == "last_value").all()


def test_score_groups_keeps_the_row_order_of_interleaved_groups():
    a, b = frame(noisy(30, level=100.0)), frame(noisy(30, level=5.0, noise=0.1))
    rows = pd.concat([a.assign(service="a"), b.assign(service="b")]).sort_values("ts")
    rows.index = [7] * len(rows)  # not unique
    history, new = rows.iloc[:40], rows.iloc[40:]
    out = score_groups(history, new, AnomalySpec(), step=FIVE_MINUTES, by=["service"])
    assert list(out.index) == list(new.index)
    assert list(out.service) == list(new.service)
    np.testing.assert_array_equal(out.value, new.value)
    assert out.expected.notna().all()
