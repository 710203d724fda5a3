"""Which notifications to send: pure decisions from points, recorded state and config.

No I/O and no wall clock: every time compared is a bucket time of the points or of the recorded
alerts, so a replay or a backfill decides the same way whenever it runs. The rules (see
docs/alerts.md):

* **Incident**: a metric's anomalous points whose `bucket_start` falls in the same
  `group_window`-aligned slot (10m: 10:00-10:10, 10:10-10:20, ... UTC). One incident, one
  message listing its groups, worst first.
* **Alert id**: `(kind, metric, group_key, incident_start)`. An id already recorded is a replay:
  skipped, except that deliveries recorded as failed are retried on those channels.
* **Suppressed** (recorded with the reason): metric not in `metrics`; worst |score| below
  `min_score`; cooldown: the group's first anomalous bucket starts less than `cooldown` after
  the `bucket_start` of the last *sent* firing of that (metric, group), or before it (backfill).
* **Recovery**: a (metric, group) that is firing whose latest point in the batch is normal and
  ends after the firing's last anomalous bucket. Recoveries are not subject to cooldown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from loglens_pipeline.alerts.model import (
    AlertItem,
    AlertPlan,
    AlertState,
    AnomalyPoint,
    Kind,
    Notification,
    PairState,
    Suppressed,
    stable_id,
)
from loglens_pipeline.config.alerts import AlertsConfig

EPOCH = datetime(1970, 1, 1)


def incident_start(bucket_start: datetime, window: timedelta) -> datetime:
    """The start of the `window`-aligned slot (from the Unix epoch, UTC) holding `bucket_start`."""
    return EPOCH + ((bucket_start - EPOCH) // window) * window


def alert_id(kind: Kind, metric: str, group_key: str, incident: datetime) -> str:
    """Deterministic id of an alert: the same anomalies give the same id in every replay."""
    return stable_id(kind, metric, group_key, incident.isoformat())


def _firing_item(metric: str, group_key: str, incident: datetime, points: list[AnomalyPoint]):
    worst = max(points, key=lambda p: (p.magnitude, p.bucket_end))
    return AlertItem(
        alert_id=alert_id("firing", metric, group_key, incident),
        kind="firing",
        metric=metric,
        group_key=group_key,
        incident_start=incident,
        bucket_start=min(p.bucket_start for p in points),
        bucket_end=max(p.bucket_end for p in points),
        value=worst.value,
        expected=worst.expected,
        lower=worst.lower,
        upper=worst.upper,
        score=worst.score,
        points=len(points),
        worst_bucket_start=worst.bucket_start,
        worst_bucket_end=worst.bucket_end,
    )


def _cooldown_reason(
    item: AlertItem, pair: PairState, cooldown: timedelta, text: str
) -> str | None:
    last = pair.last_fired_start
    if last is None:
        return None
    if item.bucket_start < last:
        return (
            f"backfill: anomaly at {item.bucket_start:%Y-%m-%d %H:%M} is older than the last "
            f"notification for this group (bucket {last:%Y-%m-%d %H:%M} UTC)"
        )
    if item.bucket_start < last + cooldown:
        return (
            f"cooldown: notified for bucket {last:%Y-%m-%d %H:%M} UTC; next notification "
            f"possible from {last + cooldown:%Y-%m-%d %H:%M} UTC (cooldown {text})"
        )
    return None


class _Planner:
    def __init__(self, state: AlertState, config: AlertsConfig, channels: Sequence[str]):
        self.state = state
        self.config = config
        self.channels = tuple(channels)
        self.pairs: dict[tuple[str, str], PairState] = dict(state.pairs)
        self.plan = AlertPlan()
        self.fired_here: dict[tuple[str, str], str] = {}

    def replay(self, item: AlertItem) -> tuple[bool, tuple[str, ...]]:
        """(is a replay, channels to retry) for an alert id already in the history."""
        delivery = self.state.deliveries.get(item.alert_id)
        if delivery is None:
            return False, ()
        if delivery.suppressed:
            return True, ()
        retry = tuple(c for c in self.channels if c in delivery.failed and c not in delivery.sent)
        return True, retry

    def decide(self, items: list[AlertItem]) -> tuple[list[AlertItem], dict[tuple, list]]:
        """Split one incident's items into new sends and retries; record suppressions."""
        fresh: list[AlertItem] = []
        retries: dict[tuple[str, ...], list[AlertItem]] = defaultdict(list)
        for item in items:
            is_replay, retry = self.replay(item)
            if is_replay:
                if retry:
                    retries[retry].append(item)
                else:
                    self.plan.duplicates.append(item)
                continue
            reason = self.suppression(item)
            if reason is not None:
                self.plan.suppressed.append(Suppressed(item, reason))
                continue
            fresh.append(item)
            if item.kind == "firing":
                key = (item.metric, item.group_key)
                self.pairs[key] = PairState(
                    last_fired_start=item.bucket_start,
                    last_fired_end=item.bucket_end,
                    last_fired_incident=item.incident_start,
                    firing=True,
                )
                self.fired_here[key] = item.alert_id
        return fresh, retries

    def suppression(self, item: AlertItem) -> str | None:
        config = self.config
        if item.kind == "recovery":
            return None
        if not config.selects(item.metric):
            return f"metric not selected: {item.metric!r} is not in alerts.metrics"
        if config.min_score is not None and item.magnitude < config.min_score:
            shown = "missing" if item.score is None else f"{item.magnitude:g}"
            return f"below min_score: worst |score| {shown} < {config.min_score:g}"
        pair = self.pairs.get((item.metric, item.group_key), PairState())
        return _cooldown_reason(item, pair, config.cooldown_delta, config.cooldown)

    def emit(self, kind: Kind, metric: str, fresh: list[AlertItem], retries: dict) -> None:
        batches = [(self.channels, fresh, False)] if fresh else []
        batches += [(channels, items, True) for channels, items in retries.items()]
        for channels, items, retry in batches:
            ordered = tuple(sorted(items, key=lambda i: (-i.magnitude, i.group_key)))
            if kind == "firing":
                start = min(i.incident_start for i in ordered)
                end = start + self.config.group_window_delta
            else:
                start = min(i.bucket_start for i in ordered)
                end = max(i.bucket_end for i in ordered)
            self.plan.notifications.append(
                Notification(kind, metric, start, end, ordered, channels, retry)
            )

    def firing(self, metric: str, points: list[AnomalyPoint]) -> None:
        window = self.config.group_window_delta
        incidents: dict[datetime, dict[str, list[AnomalyPoint]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for point in points:
            if point.is_anomaly:
                incidents[incident_start(point.bucket_start, window)][point.group_key].append(point)
        for incident in sorted(incidents):
            groups = incidents[incident]
            items = [
                _firing_item(metric, group, incident, groups[group])
                for group in sorted(groups, key=lambda g: min(p.bucket_start for p in groups[g]))
            ]
            fresh, retries = self.decide(items)
            self.emit("firing", metric, fresh, retries)

    def recovery(self, metric: str, points: list[AnomalyPoint]) -> None:
        latest: dict[str, AnomalyPoint] = {}
        for point in points:
            if point.is_anomaly is None:  # not scored: says nothing about recovery
                continue
            current = latest.get(point.group_key)
            if current is None or point.bucket_end > current.bucket_end:
                latest[point.group_key] = point
        items = []
        for group in sorted(latest):
            point, pair = latest[group], self.pairs.get((metric, group), PairState())
            if not pair.firing or point.is_anomaly or pair.last_fired_incident is None:
                continue
            if pair.last_fired_end is not None and point.bucket_end <= pair.last_fired_end:
                continue
            items.append(
                AlertItem(
                    alert_id=alert_id("recovery", metric, group, pair.last_fired_incident),
                    kind="recovery",
                    metric=metric,
                    group_key=group,
                    incident_start=pair.last_fired_incident,
                    bucket_start=point.bucket_start,
                    bucket_end=point.bucket_end,
                    value=point.value,
                    expected=point.expected,
                    lower=point.lower,
                    upper=point.upper,
                    score=point.score,
                    worst_bucket_start=pair.last_fired_start,
                    worst_bucket_end=pair.last_fired_end,
                    requires=self.fired_here.get((metric, group)),
                )
            )
        fresh, retries = self.decide(items)
        for item in fresh:
            self.pairs[(metric, item.group_key)] = replace(
                self.pairs[(metric, item.group_key)], firing=False
            )
        self.emit("recovery", metric, fresh, retries)


def plan_alerts(
    points: Iterable[AnomalyPoint],
    state: AlertState,
    config: AlertsConfig,
    channels: Sequence[str] | None = None,
) -> AlertPlan:
    """Notifications to send, items suppressed (with reasons) and replays, for these points.

    `channels` are the channel names to send to (default: every configured channel). Firing
    notifications come first, then recoveries, each in metric and time order. A recovery of a
    firing planned in this same batch carries `requires=<its alert_id>`: send it only if that
    firing was delivered somewhere.
    """
    names = [c.name for c in config.channels] if channels is None else list(channels)
    if not names:
        return AlertPlan()  # alerting is not configured: nothing to send, suppress or record
    planner = _Planner(state, config, names)
    by_metric: dict[str, list[AnomalyPoint]] = defaultdict(list)
    for point in points:
        by_metric[point.metric].append(point)
    for metric in sorted(by_metric):
        by_metric[metric].sort(key=lambda p: (p.bucket_start, p.bucket_end, p.group_key))
        planner.firing(metric, by_metric[metric])
    if config.recovery:
        for metric in sorted(by_metric):
            planner.recovery(metric, by_metric[metric])
    return planner.plan
