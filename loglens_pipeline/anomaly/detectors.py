"""Anomaly detectors: each turns a point's past into an expected value and a spread.

A detector never sees the value it scores, and never thresholds: `scoring.score_points` builds a
`Context` (the cleaned series and, per target time, its baseline window), asks the detector for
an `Estimate`, then applies the spread floor, the threshold, the direction and `min_change` the
same way for every method. Adding a method is one `Detector` subclass and one line in
`DETECTORS` (plus the name in `AnomalySpec.method`); see docs/anomaly.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import ClassVar

import numpy as np

from loglens_pipeline.anomaly._stats import (
    MAD_TO_SIGMA,
    MEANAD_TO_SIGMA,
    nan_median,
    window_mean_std,
    window_median_mad,
)
from loglens_pipeline.config.metrics import AnomalySpec

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Context:
    """What a detector may look at.

    `times` / `values`: every known point of the series (history and new), sorted, one per
    timestamp, finite values only. `targets`: the distinct times to estimate, ascending. The
    baseline of `targets[i]` is `times[lo[i]:hi[i]]`, i.e. the points in
    `[targets[i] - baseline, targets[i])`: strictly earlier, within `spec.baseline`. A detector
    must not read points outside that range for target i (the no-look-ahead guarantee).
    Times are int64 nanoseconds since the epoch (naive UTC).
    """

    times: np.ndarray
    values: np.ndarray
    targets: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    baseline_ns: int
    step_ns: int
    spec: AnomalySpec

    def subset(self, mask: np.ndarray) -> Context:
        """The same series with only the targets where `mask` is true."""
        return replace(self, targets=self.targets[mask], lo=self.lo[mask], hi=self.hi[mask])


@dataclass(frozen=True)
class Estimate:
    """Per target: expected value, spread in value units (a standard deviation's equivalent;
    NaN when the detector cannot score it), and the name of the method actually used."""

    expected: np.ndarray
    scale: np.ndarray
    detector: np.ndarray  # dtype object, one name per target

    @classmethod
    def empty(cls, n: int, name: str) -> Estimate:
        return cls(np.full(n, np.nan), np.full(n, np.nan), np.full(n, name, dtype=object))


class Detector(ABC):
    """One scoring method. Subclasses set `name` and implement `estimate`."""

    name: ClassVar[str]

    @abstractmethod
    def estimate(self, ctx: Context) -> Estimate:
        """Expected value and spread for every `ctx.targets[i]` from its baseline only."""


class ZScoreDetector(Detector):
    """Classic baseline: mean and sample standard deviation (ddof=1) of the baseline window."""

    name = "zscore"

    def estimate(self, ctx: Context) -> Estimate:
        mean, std = window_mean_std(ctx.values, ctx.lo, ctx.hi)
        return Estimate(mean, std, np.full(ctx.targets.size, self.name, dtype=object))


class RobustDetector(Detector):
    """Median and 1.4826 x MAD of the baseline window: outliers in the baseline barely move it.

    When more than half of the window equals its median (MAD = 0, e.g. a mostly-zero count),
    the spread is 1.2533 x the mean absolute deviation from the median instead, so rare
    non-median values do not get an infinite score.
    """

    name = "robust"

    def estimate(self, ctx: Context) -> Estimate:
        median, mad, meanad = window_median_mad(ctx.values, ctx.lo, ctx.hi)
        scale = np.where(mad > 0, MAD_TO_SIGMA * mad, MEANAD_TO_SIGMA * meanad)
        return Estimate(median, scale, np.full(ctx.targets.size, self.name, dtype=object))


class SeasonalDetector(Detector):
    """Same time of day in earlier days, and of the week once a week is available.

    With P one day, K the number of whole days the baseline holds (at most `max_days`), H the
    `neighbourhood` and h the `smooth` half-width in steps, for a target at grid cell t:

    * profile  S(g) = median of x(g - k*P) over k = 1..K, then a centred mean over +-h cells
      (a local linear fit of the time-of-day shape);
    * weekday  W(t) = median over the J previous same weekdays (lags j*7*P the baseline can
      hold, at most `max_weeks`) and offsets o in [-H, H] of x(t - 7jP + o) - S(t + o): how
      this weekday departed from the profile around this time of day;
    * level: the median departure of the last cells from the prediction. Without a weekday
      term, over the last `fast_level` (weekends and lasting changes are absorbed within about
      half of it, so they do not alarm for long, but neither do slow drifts); with one, over
      the last `slow_level` (weekends are in W already, so a drift over a few hours alarms);
    * expected = S(t) + W(t) + level.

    Spread: the predictor without weekday term is back-tested on each earlier day k (profile
    from the other K-1 days, fast level from that day's own cells) at offsets -H..+H around
    t - k*P; spread = 1.4826 x the median absolute error of those predictions, so it includes
    the noise of the profile and of the level, with no distributional correction.

    Everything reaches back at most K*P + H + fast level (and 7*J*P + H + slow level) cells,
    within the baseline. Targets with fewer than `min_seasons` earlier days with data near that
    time of day (or off the step grid, or with too short a baseline) fall back to `robust`, and
    say so in `detector`.
    """

    name = "seasonal"
    min_seasons: int = 3
    max_days: int = 7
    max_weeks: int = 3
    neighbourhood: timedelta = timedelta(hours=1)
    fast_level: timedelta = timedelta(hours=1)
    slow_level: timedelta = timedelta(hours=24)
    smooth: timedelta = timedelta(minutes=10)
    max_offsets: int = 24  # at most this many steps for H and the fast level (1-minute: 24 min)
    max_slow_cells: int = 288  # a longer slow level is subsampled to this many cells
    min_backtests: int = 12
    fallback: ClassVar[Detector] = RobustDetector()

    def estimate(self, ctx: Context) -> Estimate:
        n = ctx.targets.size
        result = Estimate.empty(n, self.name)
        step = ctx.step_ns
        todo = _on_grid(ctx.times, ctx.targets, step)
        shape = self.shape(ctx.baseline_ns, step)
        if shape is not None and todo.any():
            index = np.flatnonzero(todo)
            grid = _Grid(ctx.times, ctx.values, ctx.targets[index], step, shape.reach)
            tables = _SeasonalGrid(grid.values, shape)
            cells = grid.cells  # target cells in grid.values
            seasons = tables.seasons(cells)
            errors = tables.backtest(cells)
            tests = np.sum(~np.isnan(errors), axis=1)
            mad = nan_median(errors, axis=1)
            scale = np.where(mad > 0, MAD_TO_SIGMA * mad, MEANAD_TO_SIGMA * _nan_mean(errors))
            expected = tables.expected[cells]
            keep = (
                (seasons >= self.min_seasons)
                & (tests >= self.min_backtests)
                & np.isfinite(expected)
                & np.isfinite(scale)
            )
            done = index[keep]
            result.expected[done] = expected[keep]
            result.scale[done] = scale[keep]
            todo[done] = False
        if todo.any():
            fallback = self.fallback.estimate(ctx.subset(todo))
            result.expected[todo] = fallback.expected
            result.scale[todo] = fallback.scale
            result.detector[todo] = fallback.detector
        return result

    def shape(self, baseline_ns: int, step_ns: int) -> _Shape | None:
        """The table sizes in cells for this baseline and step (None: seasonal impossible)."""
        if DAY_NS % step_ns:
            return None
        period = DAY_NS // step_ns
        around = _steps(self.neighbourhood, step_ns, self.max_offsets)
        fast = _steps(self.fast_level, step_ns, self.max_offsets)
        slow = _steps(self.slow_level, step_ns, 10**9)
        smooth = min(round(self.smooth.total_seconds() * 1e9 / step_ns), around)
        cells = baseline_ns // step_ns
        days = int(min(self.max_days, (cells - around - fast) // period))
        weeks = int(min(self.max_weeks, max(0, (cells - around - slow) // (7 * period))))
        if days < max(self.min_seasons, 2) or around + fast >= period:
            return None
        stride = max(1, -(-slow // self.max_slow_cells))
        return _Shape(period, days, weeks, around, fast, slow, smooth, stride)


@dataclass(frozen=True)
class _Shape:
    period: int  # cells per day
    days: int  # K
    weeks: int  # J
    around: int  # H
    fast: int
    slow: int
    smooth: int
    stride: int  # the slow level reads every stride-th cell

    @property
    def reach(self) -> int:
        """How many cells before a target the detector reads (at most the baseline)."""
        return max(
            self.days * self.period + self.around + self.fast,
            7 * self.weeks * self.period + self.around + self.slow,
        )


def _steps(span: timedelta, step_ns: int, cap: int) -> int:
    return int(min(cap, max(1, round(span.total_seconds() * 1e9 / step_ns))))


def _on_grid(times: np.ndarray, targets: np.ndarray, step: int) -> np.ndarray:
    """Targets on the step grid of the series (the phase of its first point)."""
    if times.size == 0:
        return np.zeros(targets.size, dtype=bool)
    return (targets - times[0]) % step == 0


class _Grid:
    """The series on its step grid (NaN where no point), from `reach` cells before the first
    target to the last target; points off the grid are left out (they only feed `robust`)."""

    def __init__(self, times, values, targets, step: int, reach: int) -> None:
        phase = times[0] % step
        first = (targets[0] - phase) // step - reach
        last = (targets[-1] - phase) // step
        on = (times - phase) % step == 0
        slots = (times[on] - phase) // step - first
        inside = (slots >= 0) & (slots <= last - first)
        self.values = np.full(int(last - first) + 1, np.nan)
        self.values[slots[inside]] = values[on][inside]
        self.cells = ((targets - phase) // step - first).astype(np.int64)


class _SeasonalGrid:
    """Profile, weekday term, level and expected value for every cell of a grid."""

    def __init__(self, x: np.ndarray, shape: _Shape) -> None:
        self.x, self.shape = x, shape
        period = shape.period
        lags = np.arange(1, shape.days + 1) * period
        profile = nan_median(_shifted(x, lags), axis=1)
        smoothed = _smoothed(profile, shape.smooth)
        fast = smoothed + np.nan_to_num(_left_median(x - profile, shape.fast))
        self.expected = fast
        if shape.weeks:
            offsets = np.arange(-shape.around, shape.around + 1)
            parts = []
            for week in range(1, shape.weeks + 1):
                lag = 7 * week * period
                departure = x - _take(smoothed, np.arange(x.size) + lag)  # x(c) - S(c + lag)
                parts.append(_shifted(departure, lag - offsets))  # at t - lag + o
            weekday = nan_median(np.concatenate(parts, axis=1), axis=1)
            base = smoothed + weekday
            slow = base + np.nan_to_num(_left_median(x - base, shape.slow, shape.stride))
            self.expected = np.where(np.isfinite(weekday), slow, fast)

    def seasons(self, cells: np.ndarray) -> np.ndarray:
        """Per target: earlier days with at least one value within +-smooth cells."""
        present = ~np.isnan(self.x)
        near = _smoothed(np.where(present, 1.0, np.nan), self.shape.smooth)  # 1 or NaN
        lags = np.arange(1, self.shape.days + 1) * self.shape.period
        return np.sum(~np.isnan(_take(near, cells[:, None] - lags[None, :])), axis=1)

    def backtest(self, cells: np.ndarray) -> np.ndarray:
        """(targets, K * (2H + 1)) absolute errors of the predictor on earlier days."""
        shape = self.shape
        offsets = np.arange(-shape.around, shape.around + 1)
        errors = []
        for k in range(1, shape.days + 1):
            others = np.array([j for j in range(1, shape.days + 1) if j != k])
            loo = nan_median(_shifted(self.x, (others - k) * shape.period), axis=1)
            predicted = _smoothed(loo, shape.smooth) + np.nan_to_num(
                _left_median(self.x - loo, shape.fast)
            )
            error = np.abs(self.x - predicted)
            errors.append(_take(error, cells[:, None] - k * shape.period + offsets[None, :]))
        return np.concatenate(errors, axis=1)


def _take(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """array[index] with NaN where the index falls outside the array."""
    inside = (index >= 0) & (index < array.size)
    return np.where(inside, array[np.clip(index, 0, array.size - 1)], np.nan)


def _shifted(x: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """(cells, lags) matrix of x[g - lag] (NaN outside)."""
    return _take(x, np.arange(x.size)[:, None] - np.asarray(lags)[None, :])


def _left_median(x: np.ndarray, width: int, stride: int = 1) -> np.ndarray:
    """Median of x[g - width .. g - 1] (every `stride`-th cell) for every cell g, ignoring NaN."""
    return nan_median(_shifted(x, np.arange(1, width + 1, stride)), axis=1)


def _smoothed(x: np.ndarray, half: int) -> np.ndarray:
    """Centred moving mean over 2 * half + 1 cells, ignoring NaN."""
    return _moving_nan_mean(x[None, :], half)[0]


def _moving_nan_mean(matrix: np.ndarray, half: int) -> np.ndarray:
    """Centred moving mean over `2 * half + 1` columns, ignoring NaN (rows of `matrix`)."""
    if half <= 0:
        return matrix
    valid = ~np.isnan(matrix)
    total = np.cumsum(np.pad(np.where(valid, matrix, 0.0), ((0, 0), (1, 0))), axis=1)
    count = np.cumsum(np.pad(valid.astype(np.int64), ((0, 0), (1, 0))), axis=1)
    width = matrix.shape[1]
    lo = np.clip(np.arange(width) - half, 0, width)
    hi = np.clip(np.arange(width) + half + 1, 0, width)
    sums = total[:, hi] - total[:, lo]
    counts = count[:, hi] - count[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _nan_mean(matrix: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN (NaN for an empty row), without numpy's empty-slice warning."""
    count = np.sum(~np.isnan(matrix), axis=1)
    total = np.nansum(matrix, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


DETECTORS: dict[str, Detector] = {
    detector.name: detector for detector in (ZScoreDetector(), RobustDetector(), SeasonalDetector())
}
