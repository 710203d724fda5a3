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
    Q90_TO_SIGMA,
    nan_median,
    nan_quantiles,
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
    """Same time of day on earlier days, and of the week once three weeks are available.

    Cells are the points at exact multiples of `step` from the target (other points only feed
    the fallback). With P one day in cells, K the number of whole days the baseline holds (at
    most `max_days`), H the `neighbourhood` and h the `smooth` half-width, for a target cell t:

    * profile  M(g) = median of x(g - kP), k = 1..K; S = M averaged over g-h..g+h (a local
      linear smoother of the time-of-day shape);
    * weekday  W(t) = median over j = 1..J (J same weekdays the baseline holds, at most
      `max_weeks`, used only when at least `min_seasons` of them have data) and o in [-H, H]
      of x(t - 7jP + o) - S(t + o): how this weekday sat against the current profile;
    * level: median of x - prediction over the cells just before t. Without W it is the fast
      level (last `fast_level`) of x - M: a weekend or a lasting change is absorbed within
      about half of it, so it alarms briefly, but a slow drift is absorbed as well. With W it
      is the slow level (last `slow_level`, at most `max_slow_cells` cells read) of
      x - (S + W): the weekday pattern is already in W, and an incident of a few hours barely
      moves a 24-hour median, so a drift keeps alarming and nothing lingers after it;
    * expected = S(t) + level without W, S(t) + W(t) + slow level with W.

    Spread: the fast predictor is back-tested on each earlier day k at offsets -H..+H around
    t - kP (profile from the other K-1 days, fast level from that day's own cells), and
    spread = max(1.4826 x median |error|, 90th percentile of |error| / 1.6449): the MAD
    equivalent, widened when the errors have heavier tails than a normal distribution (counts
    near zero, skewed latencies). 1.2533 x mean |error| if both are 0.

    Reads reach back at most max(K*P + H + fast + h, 7*J*P + H + slow + h) cells, within the
    baseline. Targets with fewer than `min_seasons` earlier days with data within h cells of
    that time of day, fewer than `min_backtests` back-test errors, or a baseline too short for
    `min_seasons` days fall back to `robust`, and say so in `detector`.
    """

    name = "seasonal"
    min_seasons: int = 3
    max_days: int = 7
    max_weeks: int = 4
    neighbourhood: timedelta = timedelta(hours=1)
    fast_level: timedelta = timedelta(hours=1)
    slow_level: timedelta = timedelta(hours=24)
    smooth: timedelta = timedelta(minutes=10)
    max_offsets: int = 24  # at most this many steps for H and the fast level (1-minute: 24 min)
    max_slow_cells: int = 96  # the slow level reads at most this many cells (every 15 min)
    min_backtests: int = 12
    fallback: ClassVar[Detector] = RobustDetector()

    def estimate(self, ctx: Context) -> Estimate:
        result = Estimate.empty(ctx.targets.size, self.name)
        step = ctx.step_ns
        shape = self.shape(ctx.baseline_ns, step)
        phases = ctx.targets % step  # each target looks at points on its own step grid
        for phase in np.unique(phases) if shape is not None and ctx.times.size else []:
            index = np.flatnonzero(phases == phase)
            grid = _Grid(ctx.times, ctx.values, ctx.targets[index], step, shape.reach, phase)
            tables = _SeasonalGrid(grid.values, shape)
            cells = grid.cells  # target cells in grid.values
            seasons = tables.seasons(cells)
            errors = tables.backtest(cells)
            tests = np.sum(~np.isnan(errors), axis=1)
            mad, q90 = nan_quantiles(errors, 1, (0.5, 0.9))
            scale = np.maximum(MAD_TO_SIGMA * mad, Q90_TO_SIGMA * q90)  # heavy tails: wider
            scale = np.where(scale > 0, scale, MEANAD_TO_SIGMA * _nan_mean(errors))
            expected = tables.expected(cells)
            keep = (
                (seasons >= self.min_seasons)
                & (tests >= self.min_backtests)
                & np.isfinite(expected)
                & np.isfinite(scale)
            )
            result.expected[index[keep]] = expected[keep]
            result.scale[index[keep]] = scale[keep]
        rest = np.isnan(result.expected)  # off the grid, too little history, ...
        if rest.any():
            fallback = self.fallback.estimate(ctx.subset(rest))
            result.expected[rest] = fallback.expected
            result.scale[rest] = fallback.scale
            result.detector[rest] = fallback.detector
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
        days = int(min(self.max_days, (cells - around - fast - smooth) // period))
        weeks = int(min(self.max_weeks, max(0, (cells - around - slow - smooth) // (7 * period))))
        weeks = weeks if weeks >= self.min_seasons else 0  # no weekday term: no reach for it
        if days < max(self.min_seasons, 2) or around + fast >= period:
            return None
        stride = max(1, -(-slow // self.max_slow_cells))
        return _Shape(period, days, weeks, around, fast, slow, smooth, stride, self.min_seasons)


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
    min_weeks: int  # same weekdays needed for the weekday term

    @property
    def reach(self) -> int:
        """How many cells before a target the detector reads (at most the baseline)."""
        return max(
            self.days * self.period + self.around + self.fast + self.smooth,
            7 * self.weeks * self.period + self.around + self.slow + self.smooth,
        )


def _steps(span: timedelta, step_ns: int, cap: int) -> int:
    return int(min(cap, max(1, round(span.total_seconds() * 1e9 / step_ns))))


class _Grid:
    """The points on the grid `phase + k * step`, from `reach` cells before the first target
    to the last target, NaN where there is none (other points only feed the fallback)."""

    def __init__(self, times, values, targets, step: int, reach: int, phase: int) -> None:
        first = (targets[0] - phase) // step - reach
        last = (targets[-1] - phase) // step
        on = (times - phase) % step == 0
        slots = (times[on] - phase) // step - first
        inside = (slots >= 0) & (slots <= last - first)
        self.values = np.full(int(last - first) + 1, np.nan)
        self.values[slots[inside]] = values[on][inside]
        self.cells = ((targets - phase) // step - first).astype(np.int64)


class _SeasonalGrid:
    """The seasonal predictor on a grid, computed only over the cells the targets need."""

    def __init__(self, x: np.ndarray, shape: _Shape) -> None:
        self.xp = np.concatenate([[np.nan], x, [np.nan]])  # out-of-range reads hit a NaN
        self.shape = shape

    def x(self, cells: np.ndarray) -> np.ndarray:
        return np.take(self.xp, cells + 1, mode="clip")

    def _profile(self, lo: int, hi: int, lags: np.ndarray) -> np.ndarray:
        """Median over `lags` of x(g - lag) for the cells g in [lo, hi)."""
        cells = np.arange(lo, hi)
        return nan_median(self.x(cells[:, None] - lags[None, :]), axis=1)

    def _predict(self, lo: int, cells: np.ndarray, profile: np.ndarray, level: int, stride=1):
        """Smoothed profile + median of x - profile over the `level` cells before each cell
        (`profile` covers the cells from `lo`; NaN levels count as 0)."""
        at = cells - lo
        smoothed = _smoothed(profile, self.shape.smooth)
        departure = self.x(np.arange(lo, lo + profile.size)) - profile
        lags = np.arange(1, level + 1, stride)
        recent = np.take(
            np.concatenate([[np.nan], departure]), at[:, None] - lags[None, :] + 1, mode="clip"
        )
        return smoothed[at] + np.nan_to_num(nan_median(recent, axis=1)), smoothed

    def expected(self, cells: np.ndarray) -> np.ndarray:
        """Expected value at target cells (ascending)."""
        sh = self.shape
        days = np.arange(1, sh.days + 1) * sh.period
        first, last = int(cells[0]), int(cells[-1])
        weekly = sh.weeks >= sh.min_weeks
        before = sh.fast + sh.smooth + (sh.slow + sh.around if weekly else 0)
        after = sh.smooth + (sh.around if weekly else 0)
        lo = first - before
        profile = self._profile(lo, last + after + 1, days)
        fast, smoothed = self._predict(lo, cells, profile, sh.fast)
        if not weekly:
            return fast
        # The weekday term for every cell from `slow` before the first target to the last.
        span = np.arange(first - sh.slow, last + 1)
        offsets = np.arange(-sh.around, sh.around + 1)
        parts, seen = [], np.zeros(span.size, dtype=np.int64)
        for week in range(1, sh.weeks + 1):
            lag = 7 * week * sh.period
            past = self.x(span[:, None] - lag + offsets[None, :])  # x(c - lag + o)
            part = past - smoothed[span[:, None] - lo + offsets[None, :]]  # - S(c + o)
            seen += np.any(~np.isnan(part), axis=1)
            parts.append(part)
        weekday = nan_median(np.concatenate(parts, axis=1), axis=1)
        weekday[seen < sh.min_weeks] = np.nan  # one odd week is not a weekly pattern
        base = smoothed[span - lo] + weekday
        departure = np.concatenate([[np.nan], self.x(span) - base])
        lags = np.arange(1, sh.slow + 1, sh.stride)
        at = cells - span[0]
        recent = np.take(departure, at[:, None] - lags[None, :] + 1, mode="clip")
        slow = base[at] + np.nan_to_num(nan_median(recent, axis=1))
        return np.where(np.isfinite(weekday[at]), slow, fast)

    def seasons(self, cells: np.ndarray) -> np.ndarray:
        """Per target: earlier days with at least one value within +-smooth cells."""
        sh = self.shape
        days = np.arange(1, sh.days + 1) * sh.period
        offsets = np.arange(-sh.smooth, sh.smooth + 1)
        near = self.x(cells[:, None, None] - days[None, :, None] + offsets[None, None, :])
        return np.sum(np.any(~np.isnan(near), axis=2), axis=1)

    def backtest(self, cells: np.ndarray) -> np.ndarray:
        """(targets, K * (2H + 1)) absolute errors of the fast predictor on earlier days k:
        profile from the other days (relative to the target), level from day k's own cells."""
        sh = self.shape
        offsets = np.arange(-sh.around, sh.around + 1)
        first, last = int(cells[0]), int(cells[-1])
        errors = []
        for k in range(1, sh.days + 1):
            others = np.array([j for j in range(1, sh.days + 1) if j != k])
            start = first - k * sh.period - sh.around  # the tested cells, as one range
            tested = np.arange(start, last - k * sh.period + sh.around + 1)
            lo = start - sh.fast - sh.smooth
            loo = self._profile(lo, tested[-1] + sh.smooth + 1, (others - k) * sh.period)
            predicted, _ = self._predict(lo, tested, loo, sh.fast)
            error = np.abs(self.x(tested) - predicted)
            at = cells[:, None] - k * sh.period + offsets[None, :] - start
            errors.append(error[at])
        return np.concatenate(errors, axis=1)


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
