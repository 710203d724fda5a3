"""Run a compiled metric over a range of hours in the warehouse: rows to store, groups dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.warehouse.schema import ensure_field_columns


@dataclass(frozen=True)
class MetricResult:
    """The metric's rows for the range, and what the `max_groups` guard left out."""

    frame: pd.DataFrame
    dropped_groups: int = 0
    dropped_examples: list[str] = field(default_factory=list)


def compute_metric(
    conn: duckdb.DuckDBPyConnection, metric: CompiledMetric, start: datetime, end: datetime
) -> MetricResult:
    """Windows ending in `(start, end]` (hour boundaries, UTC), at most `max_groups` per hour."""
    ensure_field_columns(conn, metric.field_columns)  # a source not ingested yet
    conn.execute(f"CREATE OR REPLACE TEMP TABLE metric_rows AS {metric.ranked_sql(start, end)}")
    columns = ", ".join(f'"{c}"' for c in metric.columns)
    order = ", ".join(["bucket_end", *(f'"{c}"' for c in metric.group_columns)])
    limit = metric.spec.max_groups
    frame = conn.execute(
        f"SELECT {columns} FROM metric_rows WHERE group_rank <= ? ORDER BY {order}", [limit]
    ).df()
    dropped, examples = 0, []
    if metric.group_columns:
        groups = ", ".join(f'"{c}"' for c in metric.group_columns)
        dropped = conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT hour, {groups} FROM metric_rows WHERE group_rank > ?)",
            [limit],
        ).fetchall()[0][0]
        examples = [
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT ({groups})::VARCHAR FROM metric_rows WHERE group_rank > ? LIMIT 5",
                [limit],
            ).fetchall()
        ]
    conn.execute("DROP TABLE metric_rows")
    return MetricResult(frame, dropped, examples)
