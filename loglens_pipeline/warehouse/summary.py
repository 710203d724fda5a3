"""What is in the warehouse, in a few numbers: for the demo, the CLI and operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb


@dataclass(frozen=True)
class WarehouseSummary:
    """Totals over `raw` tables; `lines == events + quarantined` when nothing was lost."""

    files: int
    lines: int
    events: int
    quarantined: int
    first_hour: datetime | None
    last_hour: datetime | None
    hours: int
    quarantine_reasons: dict[str, int]
    events_by_source: dict[str, int]


def summarize(conn: duckdb.DuckDBPyConnection) -> WarehouseSummary:
    """Read the totals from the offset registry and the event and quarantine tables."""
    files, lines = conn.execute(
        "SELECT count(*), coalesce(sum(lines), 0) FROM raw.file_offsets"
    ).fetchall()[0]
    events, first, last, hours = conn.execute(
        """SELECT count(*), min(date_trunc('hour', event_time)), max(date_trunc('hour', event_time)),
                  count(DISTINCT date_trunc('hour', event_time)) FROM raw.events"""
    ).fetchall()[0]
    reasons = dict(
        conn.execute(
            "SELECT reason, count(*) FROM raw.quarantine GROUP BY reason ORDER BY 2 DESC"
        ).fetchall()
    )
    by_source = dict(
        conn.execute(
            "SELECT source, count(*) FROM raw.events GROUP BY source ORDER BY source"
        ).fetchall()
    )
    return WarehouseSummary(
        files, int(lines), events, sum(reasons.values()), first, last, hours, reasons, by_source
    )


@dataclass(frozen=True)
class MetricHighlight:
    """A metric table in one line: its size and its highest point."""

    name: str
    rows: int
    peak_value: float | None
    peak_at: datetime | None
    peak_group: str


def metric_highlights(
    conn: duckdb.DuckDBPyConnection, metrics: list[tuple[str, list[str]]]
) -> list[MetricHighlight]:
    """Rows and peak of each `metrics.<name>` table (name, group columns)."""
    found = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'metrics'"
        ).fetchall()
    }
    out = []
    for name, groups in metrics:
        if name not in found:
            out.append(MetricHighlight(name, 0, None, None, ""))
            continue
        label = " || ' ' || ".join(f"coalesce(\"{g}\", '-')" for g in groups) or "''"
        rows = conn.execute(f'SELECT count(*) FROM metrics."{name}"').fetchall()[0][0]
        peak = conn.execute(
            f'SELECT value, bucket_start, {label} FROM metrics."{name}" '
            "WHERE value IS NOT NULL ORDER BY value DESC, bucket_start LIMIT 1"
        ).fetchall()
        value, at, group = peak[0] if peak else (None, None, "")
        out.append(MetricHighlight(name, rows, value, at, group))
    return out


def top_anomalies(conn: duckdb.DuckDBPyConnection, limit: int = 8) -> list[tuple]:
    """The strongest anomalies: metric, series, bucket start, value, expected, score."""
    return conn.execute(
        """SELECT metric, series, bucket_start, value, expected, score
           FROM analytics.anomalies WHERE is_anomaly ORDER BY abs(score) DESC LIMIT ?""",
        [limit],
    ).fetchall()


EXAMPLE_QUERIES = {
    "Error share per service and hour": """
SELECT date_trunc('hour', event_time) AS hour, service,
       count(*) FILTER (level = 'ERROR') / count(*) AS error_share
FROM raw.events WHERE source = 'app'
GROUP BY ALL ORDER BY error_share DESC LIMIT 10;""",
    "Anomalies, strongest first": """
SELECT metric, series, bucket_start, round(value, 3) AS value, round(expected, 3) AS expected,
       round(score, 1) AS score
FROM analytics.anomalies WHERE is_anomaly ORDER BY abs(score) DESC LIMIT 10;""",
    "Why lines were quarantined": """
SELECT source, reason, count(*) AS lines, any_value(raw_line) AS example
FROM raw.quarantine GROUP BY ALL ORDER BY lines DESC;""",
}
