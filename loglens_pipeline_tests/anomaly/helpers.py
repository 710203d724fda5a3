"""Small series builders shared by the anomaly tests."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-01-05")  # a Monday, naive UTC
FIVE_MINUTES = timedelta(minutes=5)


def frame(values, *, start=START, step: timedelta = FIVE_MINUTES) -> pd.DataFrame:
    """A series with one point every `step` from `start` (NaN values kept)."""
    values = np.asarray(values, dtype=float)
    ts = pd.Timestamp(start) + pd.to_timedelta(np.arange(values.size) * step)
    return pd.DataFrame({"ts": ts, "value": values})


def seasonal_values(
    days: int, *, step: timedelta = FIVE_MINUTES, noise: float = 2.0, seed: int = 0
) -> np.ndarray:
    """A daily cycle between 20 (night) and 100 (afternoon peak) plus Gaussian noise."""
    per_day = int(timedelta(days=1) / step)
    hours = (np.arange(days * per_day) % per_day) * step.total_seconds() / 3600.0
    cycle = 60.0 - 40.0 * np.cos(2 * np.pi * (hours - 3.0) / 24.0)
    return cycle + np.random.default_rng(seed).normal(0.0, noise, cycle.size)


def split(series: pd.DataFrame, at: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History (rows before `at`) and new points (from `at` on)."""
    return series.iloc[:at].reset_index(drop=True), series.iloc[at:].reset_index(drop=True)
