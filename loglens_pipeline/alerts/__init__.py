"""Alerting on anomalies: plan notifications, send them (webhook, Slack, e-mail), record them.

Plain modules without Dagster; an asset or sensor calls `process_anomalies`. See docs/alerts.md.
"""

from loglens_pipeline.alerts.channels import (
    EmailSender,
    Sender,
    SlackSender,
    WebhookSender,
    build_sender,
    build_senders,
)
from loglens_pipeline.alerts.history import (
    DDL,
    TABLE,
    ensure_alert_history,
    read_pair_states,
    read_state,
    record,
)
from loglens_pipeline.alerts.model import (
    AlertItem,
    AlertPlan,
    AlertState,
    AnomalyPoint,
    Notification,
    PairState,
    SendResult,
    Suppressed,
    format_group_key,
    points_from_frame,
)
from loglens_pipeline.alerts.planner import incident_start, plan_alerts
from loglens_pipeline.alerts.process import AlertReport, Delivered, process_anomalies

__all__ = [
    "DDL",
    "TABLE",
    "AlertItem",
    "AlertPlan",
    "AlertReport",
    "AlertState",
    "AnomalyPoint",
    "Delivered",
    "EmailSender",
    "Notification",
    "PairState",
    "SendResult",
    "Sender",
    "SlackSender",
    "Suppressed",
    "WebhookSender",
    "build_sender",
    "build_senders",
    "ensure_alert_history",
    "format_group_key",
    "incident_start",
    "plan_alerts",
    "points_from_frame",
    "process_anomalies",
    "read_pair_states",
    "read_state",
    "record",
]
