"""The records alerting passes around: input points, planned alerts, delivery results, state.

Every time is a naive `datetime` in UTC, like the warehouse's `TIMESTAMP` columns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd

Kind = Literal["firing", "recovery"]
Status = Literal["sent", "suppressed", "failed"]

REQUIRED_COLUMNS = (
    "metric",
    "group_key",
    "bucket_start",
    "bucket_end",
    "value",
    "score",
    "is_anomaly",
)
OPTIONAL_COLUMNS = ("expected", "lower", "upper")
POINT_COLUMNS = (*REQUIRED_COLUMNS[:5], "expected", "lower", "upper", "score", "is_anomaly")


def utc_naive(value: Any) -> datetime:
    """A datetime, pandas Timestamp or ISO string -> naive UTC datetime (aware values converted)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _flag(value: Any) -> bool | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return bool(value)


def stable_id(*parts: Any) -> str:
    """A short deterministic id: the same inputs give the same id in every run and replay."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class AnomalyPoint:
    """One scored point of one metric series: the input of alerting.

    `group_key` names the series (e.g. `service=api`; empty for an ungrouped metric). Pass every
    scored point, not only anomalies: recovery needs the normal ones. `is_anomaly` None (NULL)
    means not scored (e.g. too little history): such a point is neither anomalous nor normal.
    """

    metric: str
    group_key: str
    bucket_start: datetime
    bucket_end: datetime
    value: float | None
    score: float | None
    is_anomaly: bool | None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> AnomalyPoint:
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"anomaly point lacks {', '.join(missing)}")
        return cls(
            metric=str(row["metric"]),
            group_key="" if row["group_key"] is None else str(row["group_key"]),
            bucket_start=utc_naive(row["bucket_start"]),
            bucket_end=utc_naive(row["bucket_end"]),
            value=_number(row["value"]),
            score=_number(row["score"]),
            is_anomaly=_flag(row["is_anomaly"]),
            expected=_number(row.get("expected")),
            lower=_number(row.get("lower")),
            upper=_number(row.get("upper")),
        )

    @property
    def magnitude(self) -> float:
        """|score|, with a missing score as 0: what `min_score` and 'worst' compare."""
        return 0.0 if self.score is None else abs(self.score)


def format_group_key(values: Mapping[str, Any]) -> str:
    """`{"service": "api", "host": "h1"}` -> `service=api, host=h1` (in the given order)."""
    return ", ".join(f"{k}={'' if v is None else v}" for k, v in values.items())


def points_from_frame(
    frame: pd.DataFrame,
    *,
    metric: str | None = None,
    group_columns: Iterable[str] | None = None,
) -> list[AnomalyPoint]:
    """Rows of an anomalies frame -> points.

    The frame has the columns `metric, group_key, bucket_start, bucket_end, value, expected,
    lower, upper, score, is_anomaly` (`expected`, `lower`, `upper` optional). A per-metric frame
    may lack `metric` (pass `metric=`) and carry its `group_by` columns instead of `group_key`
    (pass `group_columns=`; they are joined as `col=value, ...`).
    """
    frame = frame.copy()
    if "metric" not in frame.columns:
        if metric is None:
            raise ValueError("the frame has no 'metric' column: pass metric=")
        frame["metric"] = metric
    if "group_key" not in frame.columns:
        columns = list(group_columns or [])
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"group columns not in the frame: {', '.join(absent)}")
        # A metric without group_by is one series: the same (empty) key on every row.
        frame["group_key"] = (
            [
                format_group_key(dict(zip(columns, values, strict=True)))
                for values in frame[columns].itertuples(index=False, name=None)
            ]
            if columns
            else format_group_key({})
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"anomalies frame lacks column(s) {', '.join(missing)}; expected "
            f"{', '.join(POINT_COLUMNS)}"
        )
    frame = frame.astype(object).where(frame.notna(), None)
    return [AnomalyPoint.from_mapping(row) for row in frame.to_dict("records")]


def as_points(
    anomalies: pd.DataFrame | Iterable[AnomalyPoint | Mapping[str, Any]],
) -> list[AnomalyPoint]:
    """A frame, or an iterable of points / dicts with the point columns, -> points."""
    if isinstance(anomalies, pd.DataFrame):
        return points_from_frame(anomalies)
    return [p if isinstance(p, AnomalyPoint) else AnomalyPoint.from_mapping(p) for p in anomalies]


@dataclass(frozen=True)
class AlertItem:
    """One (metric, group) in one incident: what a notification line or a history row is about.

    For a firing item `bucket_start`..`bucket_end` span the group's anomalous buckets in the
    incident and `value`, `expected`, `lower`, `upper`, `score` are its worst point (largest
    |score|). For a recovery item they are the latest, normal point; `incident_start` is then the
    incident that recovered.
    """

    alert_id: str
    kind: Kind
    metric: str
    group_key: str
    incident_start: datetime
    bucket_start: datetime
    bucket_end: datetime
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    points: int = 1
    worst_bucket_start: datetime | None = None
    worst_bucket_end: datetime | None = None
    requires: str | None = None  # recovery of a firing planned in the same batch: its alert_id

    @property
    def magnitude(self) -> float:
        return 0.0 if self.score is None else abs(self.score)


@dataclass(frozen=True)
class Notification:
    """One message: a metric's groups of one incident (firing) or of one batch (recovery)."""

    kind: Kind
    metric: str
    window_start: datetime
    window_end: datetime
    items: tuple[AlertItem, ...]
    channels: tuple[str, ...]
    retry: bool = False

    @property
    def notification_id(self) -> str:
        return stable_id(self.kind, self.metric, *sorted(i.alert_id for i in self.items))


@dataclass(frozen=True)
class Suppressed:
    item: AlertItem
    reason: str


@dataclass(frozen=True)
class AlertPlan:
    """What the planner decided: messages to send, items held back (and why), replays to skip."""

    notifications: list[Notification] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    duplicates: list[AlertItem] = field(default_factory=list)


@dataclass(frozen=True)
class SendResult:
    """The outcome of one delivery; senders return it instead of raising."""

    channel: str
    ok: bool
    reason: str | None = None

    @property
    def status(self) -> Status:
        return "sent" if self.ok else "failed"


@dataclass(frozen=True)
class PairState:
    """What `raw.alert_history` says about one (metric, group): its last *sent* firing."""

    # bucket_start of the last sent firing (the cooldown's anchor)
    last_fired_start: datetime | None = None
    last_fired_end: datetime | None = None  # recovery needs a normal point ending after this
    last_fired_incident: datetime | None = None
    firing: bool = False  # a firing was sent and no recovery of it (or later) was sent since


@dataclass(frozen=True)
class Delivery:
    """Recorded outcomes of one alert_id: the replay check."""

    suppressed: bool = False
    sent: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AlertState:
    pairs: Mapping[tuple[str, str], PairState] = field(default_factory=dict)
    deliveries: Mapping[str, Delivery] = field(default_factory=dict)

    def pair(self, metric: str, group_key: str) -> PairState:
        return self.pairs.get((metric, group_key), PairState())
