"""Expected values, spreads, bands and scores of tiny series, worked out by hand in each test.

The numbers in these tests come from the documented formulas (docs/anomaly.md) applied with
pencil and paper, never from the detectors' own code.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from loglens_pipeline.anomaly import score_points
from loglens_pipeline.config.metrics import AnomalySpec
from loglens_pipeline_tests.anomaly.helpers import FIVE_MINUTES, frame, split


def _one(history_values, value, **spec):
    series = frame([*history_values, value])
    history, new = split(series, len(history_values))
    return score_points(history, new, AnomalySpec(**spec), step=FIVE_MINUTES).iloc[0]


def test_zscore_mean_and_sample_std():
    # history 1, 2, 3, 4, 10: mean 4; squared deviations 9 + 4 + 1 + 0 + 36 = 50;
    # sample variance 50 / 4 = 12.5, std = 3.5355...; value 7 -> score 3 / 3.5355 = 0.8485
    row = _one([1, 2, 3, 4, 10], 7, method="zscore", min_history=2, threshold=3)
    std = math.sqrt(12.5)
    assert row.expected == pytest.approx(4.0)
    assert row.lower == pytest.approx(4.0 - 3 * std)
    assert row.upper == pytest.approx(4.0 + 3 * std)
    assert row.score == pytest.approx(3 / std)
    assert not row.is_anomaly
    assert row.detector == "zscore"


def test_robust_median_and_mad_resist_the_outlier_in_the_baseline():
    # history 1, 2, 3, 4, 10: median 3; |x - 3| = 2, 1, 0, 1, 7 -> MAD 1 -> spread 1.4826.
    # value 7: score 4 / 1.4826 = 2.698 (the zscore above, fooled by the 10, said 0.85)
    row = _one([1, 2, 3, 4, 10], 7, method="robust", min_history=2, threshold=2.5)
    assert row.expected == pytest.approx(3.0)
    assert row.upper == pytest.approx(3.0 + 2.5 * 1.4826)
    assert row.score == pytest.approx(4 / 1.4826)
    assert row.is_anomaly
    assert row.detector == "robust"


def test_robust_even_window():
    # 1, 2, 3, 4: median 2.5; |x - 2.5| = 1.5, 0.5, 0.5, 1.5 -> MAD 1.0
    row = _one([1, 2, 3, 4], 0, method="robust", min_history=2)
    assert row.expected == pytest.approx(2.5)
    assert row.score == pytest.approx(-2.5 / 1.4826)


def test_robust_mad_zero_uses_mean_absolute_deviation():
    # 5, 5, 5, 5, 9: median 5, MAD 0; mean |x - 5| = 4 / 5 = 0.8 -> spread 1.2533 * 0.8
    spread = 1.2533 * 0.8
    inside = _one([5, 5, 5, 5, 9], 8, method="robust", min_history=2)
    assert inside.expected == pytest.approx(5.0)
    assert inside.score == pytest.approx(3 / spread)  # 2.99: inside the band
    assert not inside.is_anomaly
    outside = _one([5, 5, 5, 5, 9], 9, method="robust", min_history=2)
    assert outside.score == pytest.approx(4 / spread) and outside.is_anomaly  # 3.99


@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_flat_line_uses_the_floor_instead_of_dividing_by_zero(method):
    # a flat 50: spread 0 -> floor 1% of 50 = 0.5; 50 scores 0, 51 scores 2, 55 scores 10
    same = _one([50] * 20, 50, method=method)
    small = _one([50] * 20, 51, method=method)
    big = _one([50] * 20, 55, method=method)
    assert (same.score, same.is_anomaly) == (0.0, False)
    assert small.score == pytest.approx(2.0) and not small.is_anomaly
    assert big.score == pytest.approx(10.0) and big.is_anomaly
    assert big.upper == pytest.approx(50 + 3.5 * 0.5)


def test_flat_zero_line():
    # a flat 0: the floor is 1e-9, so 0 scores 0 and any change is flagged unless min_change
    assert _one([0] * 20, 0).score == 0.0
    assert _one([0] * 20, 1).is_anomaly
    assert not _one([0] * 20, 1, min_change=2).is_anomaly


SIX_HOURS = timedelta(hours=6)
# Four cells a day (00h, 06h, 12h, 18h), days 0..4 complete, day 5 up to 06h; target day 5 12h.
DAYS = [
    [11, 39, 72, 41],
    [10, 42, 69, 40],
    [12, 40, 71, 38],
    [9, 41, 70, 42],
    [10, 38, 73, 40],
    [12, 44],
]


def test_seasonal_profile_level_and_backtested_spread():
    """Baseline 5d at a 6-hour step: H = 1 cell, level window 1 cell, no smoothing, K = 4 days.

    profile(day5 12h) = median(73, 70, 71, 69) = 70.5
    level = x(day5 06h) - profile(day5 06h) = 44 - median(38, 41, 40, 42) = 44 - 40.5 = 3.5
    expected = 74.0

    Back-test, day k (k = 1 is day 4), cells 06h/12h/18h; profile from the 3 other days,
    level from the cell before: prediction = other-days median + (previous cell - its median)
      day 4 (others 3, 2, 1): medians 00h 10, 06h 41, 12h 70, 18h 40
        06h 41 + (10-10) = 41 vs 38 -> 3;  12h 70 + (38-41) = 67 vs 73 -> 6;
        18h 40 + (73-70) = 43 vs 40 -> 3
      day 3 (others 4, 2, 1): medians 10, 40, 71, 40
        06h 40 + (9-10) = 39 vs 41 -> 2;  12h 71 + (41-40) = 72 vs 70 -> 2;
        18h 40 + (70-71) = 39 vs 42 -> 3
      day 2 (others 4, 3, 1): medians 10, 41, 70, 40
        06h 41 + (12-10) = 43 vs 40 -> 3; 12h 70 + (40-41) = 69 vs 71 -> 2;
        18h 40 + (71-70) = 41 vs 38 -> 3
      day 1 (others 4, 3, 2): medians 10, 40, 71, 40
        06h 40 + 0 = 40 vs 42 -> 2;       12h 71 + (42-40) = 73 vs 69 -> 4;
        18h 40 + (69-71) = 38 vs 40 -> 2
    errors sorted: 2 2 2 2 2 3 3 3 3 3 4 6 -> median 3 -> 1.4826 * 3 = 4.4478;
    90th percentile (linear, position 9.9) = 3.9 -> 3.9 / 1.6449 = 2.371; spread = 4.4478.
    value 90: score (90 - 74) / 4.4478 = 3.597 > 3.5, upper = 74 + 3.5 * 4.4478 = 89.567.
    """
    values = [v for day in DAYS for v in day]
    history = frame(values, step=SIX_HOURS)
    new = frame([90.0], start=history.ts.iloc[-1] + SIX_HOURS, step=SIX_HOURS)
    spec = AnomalySpec(method="seasonal", baseline="5d")
    row = score_points(history, new, spec, step=SIX_HOURS).iloc[0]
    spread = 1.4826 * 3
    assert row.detector == "seasonal"
    assert row.expected == pytest.approx(74.0)
    assert row.upper == pytest.approx(74.0 + 3.5 * spread)
    assert row.lower == pytest.approx(74.0 - 3.5 * spread)
    assert row.score == pytest.approx(16 / spread)
    assert row.is_anomaly


def test_seasonal_falls_back_to_robust_without_enough_days():
    # baseline 4d at 6 h: K = (16 - 2) // 4 = 3 days, but only days 2..4 of the table exist when
    # the history is cut to 2 days -> fewer than 3 earlier days -> robust on the window instead
    values = [v for day in DAYS[3:] for v in day]  # 10 points: days 3, 4 and day 5 00h-06h
    history = frame(values, step=SIX_HOURS)
    new = frame([50.0], start=history.ts.iloc[-1] + SIX_HOURS, step=SIX_HOURS)
    spec = AnomalySpec(method="seasonal", baseline="4d", min_history=6)
    row = score_points(history, new, spec, step=SIX_HOURS).iloc[0]
    # robust by hand: sorted 9 10 12 38 40 41 42 44 70 73 -> median (40 + 41) / 2 = 40.5;
    # |x - 40.5| sorted 0.5 0.5 1.5 2.5 3.5 28.5 29.5 30.5 31.5 32.5 -> MAD (3.5 + 28.5) / 2 = 16
    assert row.detector == "robust"
    assert row.expected == pytest.approx(40.5)
    assert row.score == pytest.approx((50 - 40.5) / (1.4826 * 16))


def test_duplicates_count_as_their_mean_in_the_baseline():
    # history 1, 2, (3 and 5 at one timestamp -> 4), 10: robust median of 1, 2, 4, 10 = 3
    history = frame([1, 2, 3, 10])
    history.loc[4] = [history.ts[2], 5.0]
    new = frame([3.0], start=history.ts[3] + FIVE_MINUTES)
    row = score_points(history, new, AnomalySpec(min_history=2), step=FIVE_MINUTES).iloc[0]
    assert row.expected == pytest.approx(3.0)
    # |x - 3| = 2, 1, 1, 7 -> MAD 1.5
    assert row.score == pytest.approx(0.0)
    assert row.upper == pytest.approx(3.0 + 3.5 * 1.4826 * 1.5)


def test_nan_values_are_not_part_of_the_baseline():
    # 1, NaN, 3, NaN, 5 -> baseline 1, 3, 5: median 3, MAD 2
    row = _one([1, np.nan, 3, np.nan, 5], 3, min_history=3)
    assert row.expected == pytest.approx(3.0)
    assert row.upper == pytest.approx(3.0 + 3.5 * 1.4826 * 2)
