"""What a notification looks like: title and text, webhook JSON, Slack blocks, e-mail.

The formats are documented in docs/alerts.md; `PAYLOAD_VERSION` changes when the webhook JSON
changes incompatibly.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from loglens_pipeline.alerts.model import AlertItem, Notification

PAYLOAD_VERSION = 1
MAX_LISTED = 20  # groups listed in a message's text; the webhook JSON carries all of them
ALL_GROUPS = "(all)"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _span(start: datetime, end: datetime) -> str:
    same_day = start.date() == end.date()
    return f"{_when(start)}-{end:%H:%M} UTC" if same_day else f"{_when(start)} - {_when(end)} UTC"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def group_label(item: AlertItem) -> str:
    return item.group_key or ALL_GROUPS


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def title(notification: Notification) -> str:
    count = len(notification.items)
    if notification.kind == "recovery":
        return f"[LogLens] RESOLVED {notification.metric}: {_plural(count, 'group')} back to normal"
    groups = _plural(count, "anomalous group")
    return f"[LogLens] {notification.metric}: {groups}, {_span(notification.window_start, notification.window_end)}"


def item_detail(item: AlertItem) -> str:
    """A group's value, expected value and normal range, score, and when."""
    normal = ""
    if item.lower is not None or item.upper is not None:
        normal = f" (normal {_num(item.lower)} to {_num(item.upper)})"
    head = f"value {_num(item.value)}, expected {_num(item.expected)}{normal}"
    if item.kind == "recovery":
        since = item.worst_bucket_start
        note = f"; alerting since {_when(since)} UTC" if since else ""
        return f"{head}, at {_span(item.bucket_start, item.bucket_end)}{note}"
    worst = _span(
        item.worst_bucket_start or item.bucket_start, item.worst_bucket_end or item.bucket_end
    )
    line = f"{head}, score {_num(item.score)} at {worst}"
    if item.points > 1:
        line += f"; {item.points} anomalous buckets in {_span(item.bucket_start, item.bucket_end)}"
    return line


def item_line(item: AlertItem) -> str:
    return f"{group_label(item)}: {item_detail(item)}"


def listed(notification: Notification) -> tuple[list[AlertItem], int]:
    items = list(notification.items)
    return items[:MAX_LISTED], max(0, len(items) - MAX_LISTED)


def text(notification: Notification) -> str:
    """The plain-text message (e-mail body, webhook `text`, `message` in the history)."""
    shown, more = listed(notification)
    if notification.kind == "recovery":
        intro = f"These groups of metric {notification.metric} are back to normal:"
    else:
        intro = (
            f"Metric {notification.metric} is anomalous in {_plural(len(notification.items), 'group')} "
            f"(incident window {_span(notification.window_start, notification.window_end)}), worst first:"
        )
    lines = [title(notification), "", intro, *(f"  - {item_line(i)}" for i in shown)]
    if more:
        lines.append(f"  ... and {_plural(more, 'more group')}")
    if notification.retry:
        lines += ["", "(Retry of a delivery that failed earlier.)"]
    lines += [
        "",
        f"Why this was sent, or not: SELECT * FROM raw.alert_history WHERE metric = "
        f"'{notification.metric}' ORDER BY created_at DESC",
    ]
    return "\n".join(lines)


def webhook_payload(notification: Notification) -> dict[str, Any]:
    """The generic webhook's JSON body (format in docs/alerts.md)."""
    return {
        "version": PAYLOAD_VERSION,
        "source": "loglens",
        "kind": notification.kind,
        "metric": notification.metric,
        "notification_id": notification.notification_id,
        "retry": notification.retry,
        "window_start": iso(notification.window_start),
        "window_end": iso(notification.window_end),
        "title": title(notification),
        "text": text(notification),
        "groups": [
            {
                "alert_id": i.alert_id,
                "group_key": i.group_key,
                "incident_start": iso(i.incident_start),
                "bucket_start": iso(i.bucket_start),
                "bucket_end": iso(i.bucket_end),
                "worst_bucket_start": iso(i.worst_bucket_start),
                "worst_bucket_end": iso(i.worst_bucket_end),
                "value": i.value,
                "expected": i.expected,
                "lower": i.lower,
                "upper": i.upper,
                "score": i.score,
                "points": i.points,
            }
            for i in notification.items
        ],
    }


def _mrkdwn(value: str) -> str:
    """Slack's three control characters, escaped as its docs require."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Incoming-webhook body: `text` (notification fallback) and Block Kit `blocks`."""
    shown, more = listed(notification)
    heading = title(notification)
    window = _span(notification.window_start, notification.window_end)
    summary = (
        f"*{_mrkdwn(notification.metric)}* back to normal in {_plural(len(notification.items), 'group')}"
        if notification.kind == "recovery"
        else f"*{_mrkdwn(notification.metric)}* anomalous in "
        f"{_plural(len(notification.items), 'group')}, incident window {window}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
    ]
    for item in shown:
        line = f"*{_mrkdwn(group_label(item))}*: {_mrkdwn(item_detail(item))}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line[:3000]}})
    footer = f"LogLens notification {notification.notification_id}"
    if more:
        footer = f"... and {_plural(more, 'more group')} | {footer}"
    if notification.retry:
        footer += " | retry of a failed delivery"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(footer)}]})
    return {"text": heading, "blocks": blocks}


def email_message(notification: Notification, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = title(notification)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["X-LogLens-Notification"] = notification.notification_id
    message.set_content(text(notification))
    return message
