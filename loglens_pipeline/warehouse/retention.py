"""Retention: delete rows older than each table class keeps, in one transaction.

`raw.file_offsets` is never trimmed: it is what keeps old files from being ingested again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from loglens_pipeline.warehouse.analytics import existing_tables


@dataclass(frozen=True)
class RetentionCutoffs:
    """Rows strictly older than these (naive UTC) are deleted; None keeps everything."""

    raw: datetime | None
    metrics: datetime | None
    anomalies: datetime | None


def apply_retention(conn: duckdb.DuckDBPyConnection, cutoffs: RetentionCutoffs) -> dict[str, int]:
    """Delete expired rows; returns rows deleted per table."""
    plan: list[tuple[str, str, datetime]] = []
    if cutoffs.raw is not None:
        plan += [
            ("raw.events", "event_time", cutoffs.raw),
            ("raw.quarantine", "ingested_at", cutoffs.raw),
        ]
    for schema, cutoff in (("metrics", cutoffs.metrics), ("anomalies", cutoffs.anomalies)):
        if cutoff is not None:
            plan += [
                (f'{schema}."{t}"', "hour", cutoff) for t in sorted(existing_tables(conn, schema))
            ]
    deleted: dict[str, int] = {}
    conn.execute("BEGIN TRANSACTION")
    try:
        for table, column, cutoff in plan:
            deleted[table] = conn.execute(
                f"DELETE FROM {table} WHERE {column} < ?", [cutoff]
            ).fetchall()[0][0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return deleted
