"""Reading a metric's points from the warehouse and scoring a range of hours of them.

Plain DuckDB + pandas: the anomaly asset calls `score_metric_range`. History comes from the
stored metric table, so every point is scored against points strictly before it, whether the
hour runs live, is re-run, or is part of a backfill.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from loglens_pipeline.anomaly.scoring import score_groups
from loglens_pipeline.config.metrics import parse_duration
from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.warehouse.schema import table_columns

ANOMALY_COLUMNS = ("value", "expected", "lower", "upper", "score", "is_anomaly", "detector")
_TYPES = {
    "value": "DOUBLE",
    "expected": "DOUBLE",
    "lower": "DOUBLE",
    "upper": "DOUBLE",
    "score": "DOUBLE",
    "is_anomaly": "BOOLEAN",
    "detector": "VARCHAR",
}


def anomaly_columns(metric: CompiledMetric) -> list[tuple[str, str]]:
    """Columns of `anomalies.<metric>`: the metric's keys, then the score of each point."""
    keys = [("hour", "TIMESTAMP"), ("bucket_start", "TIMESTAMP"), ("bucket_end", "TIMESTAMP")]
    groups = [(g, "VARCHAR") for g in metric.group_columns]
    return keys + groups + [(c, _TYPES[c]) for c in ANOMALY_COLUMNS]


def score_metric_range(
    conn: duckdb.DuckDBPyConnection, metric: CompiledMetric, start: datetime, end: datetime
) -> pd.DataFrame:
    """Every point of the hours `[start, end)` with its expected value, band, score and flag."""
    spec = metric.spec
    reach = parse_duration(spec.anomaly.baseline)
    groups = ", ".join(f'"{g}"' for g in metric.group_columns)
    select = f"hour, bucket_start, bucket_end{', ' + groups if groups else ''}, value"
    table = f'metrics."{spec.name}"'
    columns = [name for name, _ in anomaly_columns(metric)]
    if not table_columns(conn, "metrics", spec.name):
        return pd.DataFrame(columns=columns)
    history = conn.execute(
        f"SELECT {select} FROM {table} WHERE hour >= ? AND hour < ? ORDER BY bucket_end",
        [start - reach, start],
    ).df()
    new = conn.execute(
        f"SELECT {select} FROM {table} WHERE hour >= ? AND hour < ? ORDER BY bucket_end",
        [start, end],
    ).df()
    for frame in (history, new):
        frame["ts"] = frame["bucket_start"]
    scored = score_groups(
        history, new, spec.anomaly, step=spec.window.step_delta, by=metric.group_columns
    )
    return scored[columns].reset_index(drop=True)
