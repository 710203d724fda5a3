"""A small chart of one scored series: value, expected band, anomalies marked.

Rendered to PNG with matplotlib and embedded in Markdown, which the Dagster UI shows in an
asset's materialization metadata.
"""

from __future__ import annotations

import base64
import io
from functools import cache

import pandas as pd


@cache
def _pyplot():
    """matplotlib, imported on the first chart: it adds ~0.6 s to every run process's start."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    return plt


def chart_png(points: pd.DataFrame, title: str) -> bytes:
    """PNG of `points` (bucket_start, value, expected, lower, upper, is_anomaly)."""
    plt = _pyplot()
    points = points.sort_values("bucket_start")
    figure, axis = plt.subplots(figsize=(8, 2.6), dpi=80)
    # Fixed margins instead of tight_layout, which draws the figure once more just to measure.
    figure.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.12)
    try:
        axis.fill_between(
            points["bucket_start"],
            points["lower"],
            points["upper"],
            color="#9ecae1",
            alpha=0.5,
            linewidth=0,
            label="expected band",
        )
        axis.plot(
            points["bucket_start"],
            points["expected"],
            color="#3182bd",
            linewidth=0.8,
            linestyle="--",
            label="expected",
        )
        axis.plot(
            points["bucket_start"], points["value"], color="#252525", linewidth=1.1, label="value"
        )
        flagged = points[points["is_anomaly"].fillna(False).astype(bool)]
        axis.scatter(
            flagged["bucket_start"],
            flagged["value"],
            color="#de2d26",
            s=18,
            zorder=3,
            label="anomaly",
        )
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=6, loc="upper left", ncols=4, frameon=False)
        axis.grid(alpha=0.3)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def chart_markdown(points: pd.DataFrame, title: str) -> str:
    """The chart as a Markdown image with a data URI."""
    if points.empty:
        return "_no points to chart_"
    encoded = base64.b64encode(chart_png(points, title)).decode()
    return f"![{title}](data:image/png;base64,{encoded})"
