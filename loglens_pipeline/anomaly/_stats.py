"""Vectorized statistics the detectors share: per-window median/MAD and NaN-aware medians.

Everything here is exact (no approximation of the median or the MAD) and works on many windows
at once, so a backfill of thousands of points costs a few sorts instead of a Python loop.
"""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal distribution times this is its sigma
MEANAD_TO_SIGMA = 1.2533  # sqrt(pi / 2): mean absolute deviation of a normal times this is sigma
Q90_TO_SIGMA = 1 / 1.6449  # the 90th percentile of |x - mean| of a normal is 1.6449 sigma
_CHUNK_CELLS = 2_000_000  # rows x window width per block, to bound memory (8 MB of int32)


def window_mean_std(values: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Mean and sample standard deviation (ddof=1) of `values[lo[i]:hi[i]]` for every i.

    Fast path: prefix sums of the values centred on their median. Running sums lose precision
    when a huge value sits anywhere before a window (its square dominates the prefix), so
    every window whose sum of squares is not well above the rounding bound of the prefix is
    recomputed exactly, in two passes over its own values. NaN std below 2 points, NaN mean
    for an empty window.
    """
    n = lo.size
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    counts = hi - lo
    if n == 0 or values.size == 0 or int(counts.max()) == 0:
        return mean, std
    centre = float(np.median(values))
    shifted = values - centre
    s1 = np.concatenate([[0.0], np.cumsum(shifted)])
    s2 = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
    c = counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = s1[hi] - s1[lo]
        squares = (s2[hi] - s2[lo]) - total * total / c
        rounding = 8 * np.finfo(np.float64).eps * (s2[hi] + np.abs(s1[hi]) * np.abs(total) / c)
        mean = np.where(counts > 0, total / c + centre, np.nan)
        std = np.where(counts > 1, np.sqrt(np.maximum(squares, 0.0) / (c - 1)), np.nan)
    unsure = np.flatnonzero((counts > 1) & ~(squares > 1e7 * rounding))
    if unsure.size:
        mean[unsure], std[unsure] = _exact_mean_std(values, lo[unsure], counts[unsure])
    return mean, std


def _exact_mean_std(values: np.ndarray, lo: np.ndarray, counts: np.ndarray):
    """Two-pass mean and sample std of windows gathered as matrix rows (counts >= 2)."""
    mean = np.empty(lo.size)
    std = np.empty(lo.size)
    width_max = int(counts.max())
    padded = np.concatenate([values, np.zeros(width_max)])
    rows_per_chunk = max(1, _CHUNK_CELLS // width_max)
    for start in range(0, lo.size, rows_per_chunk):
        rows = np.arange(start, min(lo.size, start + rows_per_chunk))
        c = counts[rows]
        width = int(c.max())
        outside = np.arange(width)[None, :] >= c[:, None]
        windows = np.lib.stride_tricks.sliding_window_view(padded, width)[lo[rows]]
        windows = np.where(outside, 0.0, windows)
        row_mean = windows.sum(axis=1) / c
        deviation = np.where(outside, 0.0, windows - row_mean[:, None])
        mean[rows] = row_mean
        std[rows] = np.sqrt(np.einsum("ij,ij->i", deviation, deviation) / (c - 1))
    return mean, std


def window_median_mad(values: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Exact median, MAD and mean absolute deviation from the median of `values[lo[i]:hi[i]]`.

    `values` must be finite. The values are replaced by their global ranks (int32, which numpy
    sorts with SIMD), every window's ranks are sorted as one row of a matrix, and the MAD is the
    k-th smallest distance to the median, found by a vectorized binary search over each sorted
    row (the k+1 points nearest to the median are a contiguous run of the sorted row). The mean
    absolute deviation (a fallback scale when the MAD is 0) is only computed for those windows.
    """
    n = lo.size
    median = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    meanad = np.full(n, np.nan)
    counts = hi - lo
    if n == 0 or values.size == 0 or int(counts.max()) == 0:
        return median, mad, meanad
    order = np.argsort(values, kind="stable")
    sorted_values = np.concatenate([values[order], [np.inf]])
    sentinel = values.size  # a rank past the last value: it sorts to the end of every row
    ranks = np.empty(values.size, dtype=np.int32)
    ranks[order] = np.arange(values.size, dtype=np.int32)
    width_max = int(counts.max())
    padded = np.concatenate([ranks, np.full(width_max, sentinel, dtype=np.int32)])
    rows_per_chunk = max(1, _CHUNK_CELLS // width_max)
    for start in range(0, n, rows_per_chunk):
        rows = np.arange(start, min(n, start + rows_per_chunk))
        rows = rows[counts[rows] > 0]
        if rows.size == 0:
            continue
        c = counts[rows]
        width = int(c.max())
        columns = np.arange(width)
        matrix = padded[lo[rows, None] + columns[None, :]]
        if int(c.min()) < width:
            matrix[columns[None, :] >= c[:, None]] = sentinel
        matrix.sort(axis=1)
        index = np.arange(rows.size)

        def at(position, matrix=matrix, index=index):
            return sorted_values[matrix[index, position]]

        lower, upper = (c - 1) // 2, c // 2
        med = 0.5 * (at(lower) + at(upper))
        m_ad = 0.5 * (_kth_distance(at, c, med, lower) + _kth_distance(at, c, med, upper))
        median[rows], mad[rows] = med, m_ad
        flat = np.flatnonzero(m_ad == 0)
        if flat.size:
            inside = sorted_values[matrix[flat]]
            inside = np.where(columns[None, :] < c[flat, None], inside, med[flat, None])
            meanad[rows[flat]] = np.abs(inside - med[flat, None]).sum(axis=1) / c[flat]
        meanad[rows[m_ad > 0]] = np.nan
    return median, mad, meanad


def _kth_distance(at, counts: np.ndarray, centre: np.ndarray, k: np.ndarray) -> np.ndarray:
    """k-th smallest (0-based) |x - centre| per sorted row (`at(j)`: the rows' j-th values).

    It is the minimum over runs [i, i+k] of the run's larger distance to the centre; the run
    where the right distance overtakes the left one is found by binary search, since
    h(i) = a[i] + a[i+k] - 2 * centre grows with i.
    """
    lo_i = np.zeros_like(counts)
    hi_i = counts - k  # search i in [0, counts - k]; counts - k means "no run crosses"
    while True:
        active = lo_i < hi_i
        if not active.any():
            break
        mid = np.where(active, (lo_i + hi_i) // 2, 0)
        h = at(mid) + at(mid + k) - 2.0 * centre
        hi_i = np.where(active & (h >= 0), mid, hi_i)
        lo_i = np.where(active & (h < 0), mid + 1, lo_i)
    crossing = lo_i
    right = np.where(
        crossing <= counts - 1 - k, at(np.minimum(crossing + k, counts - 1)) - centre, np.inf
    )
    left = np.where(crossing >= 1, centre - at(np.maximum(crossing - 1, 0)), np.inf)
    return np.minimum(right, left)


def nan_median(array: np.ndarray, axis: int) -> np.ndarray:
    """Median over `axis` ignoring NaN (NaN where a slice has no value), by one sort."""
    return nan_quantiles(array, axis, (0.5,))[0]


def nan_quantiles(array: np.ndarray, axis: int, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Quantiles over `axis` ignoring NaN, numpy's default (linear) method, from one sort."""
    moved = np.moveaxis(array, axis, -1)
    ordered = np.sort(moved, axis=-1)  # NaN sort last
    count = np.sum(~np.isnan(moved), axis=-1)
    out = []
    for q in qs:
        position = q * (np.maximum(count, 1) - 1)
        below = np.floor(position).astype(np.int64)
        above = np.ceil(position).astype(np.int64)
        low = np.take_along_axis(ordered, below[..., None], axis=-1)[..., 0]
        high = np.take_along_axis(ordered, above[..., None], axis=-1)[..., 0]
        value = low + (high - low) * (position - below)
        out.append(np.where(count > 0, value, np.nan))
    return out
