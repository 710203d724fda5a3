"""`raw.alert_history`: every alert sent, suppressed or failed, and every recovery; the state.

One row per (alert, channel) delivery attempt, or one row (channel NULL) per suppressed alert.
The state the planner needs (last sent firing per metric and group, replays) is read back from
here, so the table is the single source of truth and the answer to "why was this (not) sent".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime

import duckdb

from loglens_pipeline.alerts.model import (
    AlertItem,
    AlertState,
    Delivery,
    Kind,
    Notification,
    PairState,
    SendResult,
    Status,
    Suppressed,
)

TABLE = "raw.alert_history"
DDL = """
CREATE TABLE IF NOT EXISTS raw.alert_history (
    alert_id         VARCHAR   NOT NULL,  -- hash of kind, metric, group_key, incident_start: same in every replay
    notification_id  VARCHAR,             -- the message this row went out in (NULL when suppressed)
    metric           VARCHAR   NOT NULL,
    group_key        VARCHAR   NOT NULL,  -- '' for an ungrouped metric
    kind             VARCHAR   NOT NULL CHECK (kind IN ('firing', 'recovery')),
    status           VARCHAR   NOT NULL CHECK (status IN ('sent', 'suppressed', 'failed')),
    reason           VARCHAR,             -- why suppressed or failed (NULL when sent)
    channel          VARCHAR,             -- channel name (NULL when suppressed)
    incident_start   TIMESTAMP NOT NULL,  -- group_window slot of the incident (recovery: the one recovered)
    bucket_start     TIMESTAMP NOT NULL,  -- firing: first anomalous bucket of the group in the incident
    bucket_end       TIMESTAMP NOT NULL,  -- firing: end of its last anomalous bucket; recovery: the normal point
    value            DOUBLE,              -- firing: the worst point (largest |score|); recovery: the normal point
    expected         DOUBLE,
    score            DOUBLE,
    message          VARCHAR,             -- the text sent (NULL when suppressed)
    created_at       TIMESTAMP NOT NULL   -- wall clock (UTC) when the row was written
)"""
COLUMNS = (
    "alert_id",
    "notification_id",
    "metric",
    "group_key",
    "kind",
    "status",
    "reason",
    "channel",
    "incident_start",
    "bucket_start",
    "bucket_end",
    "value",
    "expected",
    "score",
    "message",
    "created_at",
)


@dataclass(frozen=True)
class HistoryRow:
    alert_id: str
    notification_id: str | None
    metric: str
    group_key: str
    kind: Kind
    status: Status
    reason: str | None
    channel: str | None
    incident_start: datetime
    bucket_start: datetime
    bucket_end: datetime
    value: float | None
    expected: float | None
    score: float | None
    message: str | None
    created_at: datetime

    @classmethod
    def of(
        cls,
        item: AlertItem,
        *,
        status: Status,
        reason: str | None,
        created_at: datetime,
        channel: str | None = None,
        notification_id: str | None = None,
        message: str | None = None,
    ) -> HistoryRow:
        return cls(
            item.alert_id,
            notification_id,
            item.metric,
            item.group_key,
            item.kind,
            status,
            reason,
            channel,
            item.incident_start,
            item.bucket_start,
            item.bucket_end,
            item.value,
            item.expected,
            item.score,
            message,
            created_at,
        )


def ensure_alert_history(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the `raw` schema and `raw.alert_history` if they do not exist (idempotent)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute(DDL)


def suppressed_rows(suppressed: Iterable[Suppressed], created_at: datetime) -> list[HistoryRow]:
    return [
        HistoryRow.of(s.item, status="suppressed", reason=s.reason, created_at=created_at)
        for s in suppressed
    ]


def delivery_rows(
    notification: Notification, result: SendResult, message: str, created_at: datetime
) -> list[HistoryRow]:
    """One row per group of the notification for one channel's outcome."""
    return [
        HistoryRow.of(
            item,
            status=result.status,
            reason=result.reason,
            created_at=created_at,
            channel=result.channel,
            notification_id=notification.notification_id,
            message=message,
        )
        for item in notification.items
    ]


def record(conn: duckdb.DuckDBPyConnection, rows: Sequence[HistoryRow]) -> int:
    """Append rows in one transaction (all or none); call outside an open transaction."""
    if not rows:
        return 0
    placeholders = ", ".join("?" for _ in COLUMNS)
    conn.begin()
    try:
        conn.executemany(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            [astuple(row) for row in rows],
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return len(rows)


def _metric_filter(metrics: Iterable[str] | None) -> tuple[str, list]:
    if metrics is None:
        return "TRUE", []
    return "list_contains(?::VARCHAR[], metric)", [sorted(set(metrics))]


def read_pair_states(
    conn: duckdb.DuckDBPyConnection, metrics: Iterable[str] | None = None
) -> dict[tuple[str, str], PairState]:
    """Per (metric, group): the last *sent* firing, and whether it is still firing.

    A pair is firing when a firing was sent for an incident later than the last incident whose
    recovery was sent. Suppressed and failed rows do not change the state.
    """
    where, params = _metric_filter(metrics)
    rows = conn.execute(
        f"""
        SELECT metric, group_key,
               max(bucket_start)   FILTER (WHERE kind = 'firing')   AS last_fired_start,
               max(bucket_end)     FILTER (WHERE kind = 'firing')   AS last_fired_end,
               max(incident_start) FILTER (WHERE kind = 'firing')   AS last_fired_incident,
               max(incident_start) FILTER (WHERE kind = 'recovery') AS last_recovered_incident
        FROM {TABLE}
        WHERE status = 'sent' AND {where}
        GROUP BY metric, group_key
        """,
        params,
    ).fetchall()
    states = {}
    for metric, group, fired_start, fired_end, fired_incident, recovered in rows:
        firing = fired_incident is not None and (recovered is None or recovered < fired_incident)
        states[(metric, group)] = PairState(fired_start, fired_end, fired_incident, firing)
    return states


def read_deliveries(
    conn: duckdb.DuckDBPyConnection,
    metrics: Iterable[str] | None = None,
    since: datetime | None = None,
) -> dict[str, Delivery]:
    """Recorded outcomes per alert_id (incidents starting at or after `since`): replay checks."""
    where, params = _metric_filter(metrics)
    if since is not None:
        where += " AND incident_start >= ?"
        params.append(since)
    suppressed: set[str] = set()
    sent: dict[str, set[str]] = defaultdict(set)
    failed: dict[str, set[str]] = defaultdict(set)
    for alert, status, channel in conn.execute(
        f"SELECT DISTINCT alert_id, status, channel FROM {TABLE} WHERE {where}", params
    ).fetchall():
        if status == "suppressed":
            suppressed.add(alert)
        elif status == "sent":
            sent[alert].add(channel)
        else:
            failed[alert].add(channel)
    return {
        alert: Delivery(alert in suppressed, frozenset(sent[alert]), frozenset(failed[alert]))
        for alert in suppressed | set(sent) | set(failed)
    }


def read_state(
    conn: duckdb.DuckDBPyConnection,
    metrics: Iterable[str] | None = None,
    since: datetime | None = None,
) -> AlertState:
    """The planner's input from the history: pair states and recorded deliveries.

    Recoveries of incidents older than `since` are not loaded for the replay check; they need not
    be: a delivered recovery ends the pair's firing state, so it is not planned again.
    """
    metrics = None if metrics is None else sorted(set(metrics))
    return AlertState(read_pair_states(conn, metrics), read_deliveries(conn, metrics, since))
