"""`score_points`: score new points of one series against their past, with no look-ahead.

Plain pandas/numpy, no Dagster: the anomaly assets call this per series (see `score_groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from loglens_pipeline.anomaly.detectors import DETECTORS, Context, Estimate
from loglens_pipeline.config.metrics import AnomalySpec, parse_duration

RESULT_COLUMNS = ("expected", "lower", "upper", "score", "is_anomaly", "detector")
INSUFFICIENT = "insufficient_history"
DISABLED = "disabled"
SCALE_FLOOR_RELATIVE = 0.01  # a spread never below 1% of the expected value ...
SCALE_FLOOR_ABSOLUTE = 1e-9  # ... nor below this, so a flat line never divides by zero


def score_points(
    history: pd.DataFrame,
    new: pd.DataFrame,
    spec: AnomalySpec,
    *,
    step: timedelta,
) -> pd.DataFrame:
    """Score every row of `new` against the points strictly before it, within `spec.baseline`.

    `history` and `new` have columns `ts` (naive UTC datetime64; tz-aware is converted to UTC)
    and `value` (float, NaN allowed); other columns of `new` are kept. Earlier rows of `new` are
    part of later rows' baselines, exactly as if the points had been scored one run at a time;
    a history row at a timestamp that `new` also has is replaced by the new row. Several points
    at one timestamp count as their mean in baselines, and each such row of `new` is scored on
    its own (against the points before that timestamp). NaN values are never part of a baseline
    and are not flagged (they still get an expected value and band when one can be computed).

    Returns a copy of `new` (same index and order) with `expected`, `lower`, `upper`, `score`
    ((value - expected) / spread), `is_anomaly` and `detector` (the method actually used:
    `zscore`, `robust`, `seasonal`, `robust` when seasonal fell back, `insufficient_history`
    when fewer than `spec.min_history` baseline points exist, or `disabled`).
    """
    step_ns = _step_ns(step)
    baseline_ns = _duration_ns(parse_duration(spec.baseline))
    new_ns = _times(new["ts"] if len(new) else pd.Series([], dtype="datetime64[ns]"), "new")
    new_values = pd.to_numeric(new["value"], errors="coerce").to_numpy(dtype=np.float64)
    n = len(new)
    expected = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    detector = np.full(n, DISABLED if not spec.enabled else INSUFFICIENT, dtype=object)

    if n and spec.enabled:
        times, values = _baseline_series(history, new_ns, new_values)
        targets, inverse = np.unique(new_ns, return_inverse=True)
        lo = np.searchsorted(times, targets - baseline_ns, side="left")
        hi = np.searchsorted(times, targets, side="left")
        scored = (hi - lo) >= spec.min_history
        if scored.any():
            ctx = Context(
                times, values, targets[scored], lo[scored], hi[scored], baseline_ns, step_ns, spec
            )
            estimate = DETECTORS[spec.method].estimate(ctx)
            _check(estimate, int(scored.sum()), spec.method)
            per_target = Estimate.empty(targets.size, INSUFFICIENT)
            per_target.expected[scored] = estimate.expected
            per_target.scale[scored] = estimate.scale
            per_target.detector[scored] = np.where(
                np.isfinite(estimate.expected) & np.isfinite(estimate.scale),
                estimate.detector,
                INSUFFICIENT,
            )
            expected = per_target.expected[inverse]
            scale = per_target.scale[inverse]
            detector = per_target.detector[inverse]

    ok = np.isfinite(expected) & np.isfinite(scale)
    expected = np.where(ok, expected, np.nan)
    floor = np.maximum(SCALE_FLOOR_RELATIVE * np.abs(expected), SCALE_FLOOR_ABSOLUTE)
    scale = np.where(ok, np.maximum(scale, floor), np.nan)
    band = spec.threshold * scale
    deviation = new_values - expected
    with np.errstate(invalid="ignore"):
        score = deviation / scale
        above = deviation > band
        below = deviation < -band
        big_enough = np.abs(deviation) >= spec.min_change
    flagged = {"up": above, "down": below, "both": above | below}[spec.direction]
    result = pd.DataFrame(
        {
            "expected": expected,
            "lower": expected - band,
            "upper": expected + band,
            "score": score,
            "is_anomaly": flagged & big_enough & ok & np.isfinite(new_values),
            "detector": np.asarray(detector, dtype=object),
        },
        index=new.index,
    )
    # One concat instead of six column assignments (each rebuilds the frame's column index).
    return pd.concat([new.drop(columns=list(RESULT_COLUMNS), errors="ignore"), result], axis=1)


def score_groups(
    history: pd.DataFrame,
    new: pd.DataFrame,
    spec: AnomalySpec,
    *,
    step: timedelta,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """`score_points` for every series of a grouped metric (one series per value of `by`).

    Rows keep `new`'s index and order; a group with no history is scored on its new rows only.
    Group columns with NaN form their own group.
    """
    by = list(by)
    if not by:
        return score_points(history, new, spec, step=step)
    if not len(new):
        return score_points(history.iloc[0:0], new, spec, step=step)
    past = dict(tuple(history.groupby(by, dropna=False, sort=False))) if len(history) else {}
    empty = history.iloc[0:0] if len(history.columns) else pd.DataFrame(columns=["ts", "value"])
    positional = new.set_axis(pd.RangeIndex(len(new)))
    parts = [
        score_points(past.get(key, empty), rows, spec, step=step)
        for key, rows in positional.groupby(by, dropna=False, sort=False)
    ]
    return pd.concat(parts).sort_index().set_axis(new.index)


def _baseline_series(history: pd.DataFrame, new_ns: np.ndarray, new_values: np.ndarray):
    """One finite value per timestamp, sorted: history (minus timestamps in `new`) plus new."""
    if len(history):
        hist_ns = _times(history["ts"], "history")
        hist_values = pd.to_numeric(history["value"], errors="coerce").to_numpy(np.float64)
        keep = ~np.isin(hist_ns, new_ns)
        times = np.concatenate([hist_ns[keep], new_ns])
        values = np.concatenate([hist_values[keep], new_values])
    else:
        times, values = new_ns, new_values
    finite = np.isfinite(values)
    times, values = times[finite], values[finite]
    unique, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    if unique.size == times.size:
        order = np.argsort(times, kind="stable")
        return times[order], values[order]
    sums = np.bincount(inverse, weights=values, minlength=unique.size)
    return unique, sums / counts


def _times(column: pd.Series, what: str) -> np.ndarray:
    """Timestamps as int64 nanoseconds (naive UTC)."""
    stamps = column if pd.api.types.is_datetime64_any_dtype(column) else pd.to_datetime(column)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if stamps.isna().any():
        raise ValueError(f"{what}: column 'ts' has missing timestamps")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _duration_ns(value: timedelta) -> int:
    return int(pd.Timedelta(value).value)


def _step_ns(step: timedelta) -> int:
    ns = _duration_ns(step)
    if ns <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    return ns


def _check(estimate: Estimate, n: int, method: str) -> None:
    for name in ("expected", "scale", "detector"):
        if len(getattr(estimate, name)) != n:
            raise RuntimeError(
                f"detector {method!r} returned {name} for the wrong number of points"
            )
