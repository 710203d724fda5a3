"""`process_anomalies`: plan, send through the channels, record every outcome in the warehouse."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from loglens_pipeline.alerts.channels import Sender, build_senders
from loglens_pipeline.alerts.history import (
    delivery_rows,
    ensure_alert_history,
    read_state,
    record,
    suppressed_rows,
)
from loglens_pipeline.alerts.messages import text
from loglens_pipeline.alerts.model import (
    AlertItem,
    AnomalyPoint,
    Notification,
    SendResult,
    Suppressed,
    as_points,
    utc_naive,
    utc_now,
)
from loglens_pipeline.alerts.planner import incident_start, plan_alerts
from loglens_pipeline.config.alerts import AlertsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """One notification and what each of its channels answered."""

    notification: Notification
    results: tuple[SendResult, ...]

    @property
    def delivered(self) -> bool:
        return any(r.ok for r in self.results)


@dataclass(frozen=True)
class AlertReport:
    """Everything one call decided and did; every entry but `skipped` is in raw.alert_history."""

    deliveries: list[Delivered] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    duplicates: list[AlertItem] = field(default_factory=list)
    # Recoveries of a firing planned in the same call that no channel accepted: not recorded, so
    # they are planned again once the firing is delivered (a replay retries it).
    skipped: list[Suppressed] = field(default_factory=list)
    rows_written: int = 0

    @property
    def sent(self) -> int:
        """(notification, channel) deliveries that succeeded."""
        return sum(r.ok for d in self.deliveries for r in d.results)

    @property
    def failed(self) -> int:
        return sum(not r.ok for d in self.deliveries for r in d.results)

    def failures(self) -> list[str]:
        return [
            f"{d.notification.metric} ({d.notification.kind}) via {r.channel}: {r.reason}"
            for d in self.deliveries
            for r in d.results
            if not r.ok
        ]

    def as_metadata(self) -> dict[str, Any]:
        """Plain numbers and text, e.g. for a Dagster materialization's metadata."""
        return {
            "alert_notifications": len(self.deliveries),
            "alert_deliveries_sent": self.sent,
            "alert_deliveries_failed": self.failed,
            "alerts_suppressed": len(self.suppressed),
            "alert_replays_skipped": len(self.duplicates),
            "alert_history_rows": self.rows_written,
            "alert_failures": "\n".join(self.failures()),
        }


def _send(sender: Sender | None, channel: str, notification: Notification) -> SendResult:
    if sender is None:
        return SendResult(channel, False, f"channel {channel!r} is not configured")
    try:
        return sender.send(notification)
    except Exception as exc:  # senders should not raise; a custom one might
        return SendResult(channel, False, f"unexpected error: {type(exc).__name__}: {exc}")


def process_anomalies(
    conn: duckdb.DuckDBPyConnection,
    anomalies: pd.DataFrame | Iterable[AnomalyPoint | Mapping[str, Any]],
    config: AlertsConfig,
    now: datetime | None = None,
    *,
    senders: Mapping[str, Sender] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AlertReport:
    """Notify about new anomaly points; record every decision in `raw.alert_history`.

    `anomalies`: a frame or records with `metric, group_key, bucket_start, bucket_end, value,
    expected, lower, upper, score, is_anomaly` (every scored point, normal ones included, so
    recoveries are seen). `now` only stamps `created_at` (default: the wall clock); decisions use
    bucket times. `senders` replaces the configured channels (name -> sender); `environ` is where
    secrets are read at send time (default `os.environ`). Channel failures never raise: they are
    recorded with status `failed` and listed in the report. Call outside an open transaction.
    """
    points = as_points(anomalies)
    if senders is None:
        senders = build_senders(config, environ)
    if not points or not senders:
        return AlertReport()
    ensure_alert_history(conn)
    since = incident_start(min(p.bucket_start for p in points), config.group_window_delta)
    state = read_state(conn, {p.metric for p in points}, since)
    plan = plan_alerts(points, state, config, list(senders))
    clock = (lambda: utc_naive(now)) if now is not None else utc_now

    written = record(conn, suppressed_rows(plan.suppressed, clock()))
    deliveries: list[Delivered] = []
    skipped: list[Suppressed] = []
    fired: set[str] = set()
    for notification in plan.notifications:
        if notification.kind == "recovery":
            keep = [i for i in notification.items if i.requires is None or i.requires in fired]
            skipped += [
                Suppressed(i, "its firing notification was not delivered on any channel")
                for i in notification.items
                if i not in keep
            ]
            if not keep:
                continue
            notification = replace(notification, items=tuple(keep))
        message = text(notification)
        results = []
        for channel in notification.channels:
            result = _send(senders.get(channel), channel, notification)
            written += record(conn, delivery_rows(notification, result, message, clock()))
            results.append(result)
            if result.ok and notification.kind == "firing":
                fired.update(i.alert_id for i in notification.items)
            if not result.ok:
                log.warning(
                    "alert for %s (%s) via %s failed: %s",
                    notification.metric,
                    notification.kind,
                    channel,
                    result.reason,
                )
        deliveries.append(Delivered(notification, tuple(results)))
    return AlertReport(deliveries, plan.suppressed, plan.duplicates, skipped, written)
