"""Run a compiled metric over a range of hours in the warehouse: rows to store, groups dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.warehouse.connection import use_utc
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


@contextmanager
def computed_ahead(
    conn: duckdb.DuckDBPyConnection,
    metrics: Sequence[CompiledMetric],
    start: datetime,
    end: datetime,
) -> Iterator[Callable[[CompiledMetric], MetricResult]]:
    """`compute_metric` of each of `metrics`, in order, one metric ahead in a thread.

    Yields a function giving a metric's result; asking for one starts the next one's SQL on a
    cursor of `conn`. DuckDB releases the GIL while a query runs, so the next metric's SQL
    runs on the other core while the caller stores, scores and charts this one. At most two
    results are held. A metric's error is raised when its result is asked for.
    """
    # Columns are added here, in the caller's transaction, not concurrently from the thread.
    for metric in metrics:
        ensure_field_columns(conn, metric.field_columns)
    order = {metric.spec.name: index for index, metric in enumerate(metrics)}
    pending: dict[int, Future[MetricResult]] = {}
    cursor = use_utc(conn.cursor())
    with cursor, ThreadPoolExecutor(1, thread_name_prefix="loglens-metric-sql") as pool:

        def submit(index: int) -> None:
            if index < len(metrics) and index not in pending:
                pending[index] = pool.submit(compute_metric, cursor, metrics[index], start, end)

        def result(metric: CompiledMetric) -> MetricResult:
            index = order[metric.spec.name]
            submit(index)
            submit(index + 1)
            return pending.pop(index).result()

        submit(0)
        try:
            yield result
        finally:
            for future in pending.values():
                future.cancel()
