"""The `analytics` schema BI tools read: long-format metric points, the metric catalog, and
ingestion health. Rebuilt from the current tables and configs before each reader copy."""

from __future__ import annotations

import json

import duckdb

from loglens_pipeline.metrics.compiler import CompiledMetric

INGEST_HEALTH = """
CREATE OR REPLACE VIEW analytics.ingest_health AS
WITH e AS (
    SELECT source, date_trunc('hour', ingested_at) AS ingest_hour, count(*) AS events,
           avg(epoch(ingested_at) - epoch(event_time)) AS avg_lag_seconds,
           max(epoch(ingested_at) - epoch(event_time)) AS max_lag_seconds
    FROM raw.events GROUP BY ALL
), q AS (
    SELECT source, date_trunc('hour', ingested_at) AS ingest_hour, count(*) AS quarantined
    FROM raw.quarantine GROUP BY ALL
)
SELECT source, ingest_hour,
       coalesce(events, 0) + coalesce(quarantined, 0) AS lines,
       coalesce(events, 0) AS events,
       coalesce(quarantined, 0) AS quarantined,
       avg_lag_seconds, max_lag_seconds
FROM e FULL JOIN q USING (source, ingest_hour)
"""

QUARANTINE_BY_REASON = """
CREATE OR REPLACE VIEW analytics.quarantine_by_reason AS
SELECT source, reason, count(*) AS lines, min(ingested_at) AS first_seen, max(ingested_at) AS last_seen,
       any_value(raw_line) AS example
FROM raw.quarantine GROUP BY source, reason
"""

# The value columns each long-format view carries after metric, keys, series and dimensions.
POINT_COLUMNS = {"value": "DOUBLE", "events": "BIGINT"}
ANOMALY_COLUMNS = {
    "value": "DOUBLE", "expected": "DOUBLE", "lower": "DOUBLE", "upper": "DOUBLE",
    "score": "DOUBLE", "is_anomaly": "BOOLEAN", "detector": "VARCHAR",
}  # fmt: skip


def existing_tables(conn: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
            [schema],
        ).fetchall()
    }


def _series(groups: list[str]) -> tuple[str, str]:
    """SQL for a readable series label (`service=cart`) and a JSON object of the dimensions."""
    if not groups:
        return "''", "'{}'"
    label = " || ', ' || ".join(f"'{g}=' || coalesce(\"{g}\", '')" for g in groups)
    obj = "json_object(" + ", ".join(f"'{g}', \"{g}\"" for g in groups) + ")::VARCHAR"
    return label, obj


def long_format_sql(
    metrics: list[CompiledMetric], present: set[str], schema: str, values: dict[str, str]
) -> str:
    """Every per-metric table of `schema` as one relation: metric, keys, series, values."""
    columns = ", ".join(values)
    parts = []
    for metric in metrics:
        name = metric.spec.name
        if name in present:
            label, obj = _series(metric.group_columns)
            parts.append(
                f"SELECT '{name}' AS metric, hour, bucket_start, bucket_end, {label} AS series, "
                f'{obj} AS dimensions, {columns} FROM {schema}."{name}"'
            )
    if parts:
        return "\nUNION ALL\n".join(parts)
    typed = ", ".join(f"NULL::{kind} AS {name}" for name, kind in values.items())
    return (  # no table yet: the same columns, no rows, so BI tools see the schema
        "SELECT NULL::VARCHAR AS metric, NULL::TIMESTAMP AS hour, NULL::TIMESTAMP AS bucket_start, "
        "NULL::TIMESTAMP AS bucket_end, NULL::VARCHAR AS series, NULL::VARCHAR AS dimensions, "
        f"{typed} WHERE false"
    )


def write_metric_catalog(conn: duckdb.DuckDBPyConnection, metrics: list[CompiledMetric]) -> None:
    """`analytics.metric_catalog`: one row per metric of the YAML, with what defines it."""
    conn.execute("""CREATE OR REPLACE TABLE analytics.metric_catalog (
        metric VARCHAR, description VARCHAR, owner VARCHAR, sources VARCHAR, aggregation VARCHAR,
        field VARCHAR, percentile DOUBLE, filter VARCHAR, numerator VARCHAR, denominator VARCHAR,
        window_size VARCHAR, window_step VARCHAR, group_by VARCHAR, max_groups INTEGER,
        anomaly_method VARCHAR, code_version VARCHAR, table_name VARCHAR, tags VARCHAR)""")
    rows = [
        (
            s.name,
            s.description,
            s.owner,
            ", ".join(s.source),
            s.aggregation,
            s.field,
            s.p,
            s.filter,
            s.numerator,
            s.denominator,
            s.window.size,
            s.window.step or s.window.size,
            ", ".join(s.group_by),
            s.max_groups,
            s.anomaly.method if s.anomaly.enabled else None,
            m.code_version,
            f"metrics.{s.name}",
            json.dumps(s.tags),
        )
        for m in metrics
        for s in [m.spec]
    ]
    if rows:
        conn.executemany(
            f"INSERT INTO analytics.metric_catalog VALUES ({', '.join('?' * 18)})", rows
        )


def build_analytics(conn: duckdb.DuckDBPyConnection, metrics: list[CompiledMetric]) -> None:
    """(Re)create the `analytics` views and catalog in one transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        conn.execute(INGEST_HEALTH)
        conn.execute(QUARANTINE_BY_REASON)
        for view, schema, values in (
            ("metric_points", "metrics", POINT_COLUMNS),
            ("anomalies", "anomalies", ANOMALY_COLUMNS),
        ):
            body = long_format_sql(metrics, existing_tables(conn, schema), schema, values)
            conn.execute(f"CREATE OR REPLACE VIEW analytics.{view} AS {body}")
        write_metric_catalog(conn, metrics)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
