"""The planner's decisions: grouping, cooldown, suppression, recovery, replays. Pure, no I/O."""

from __future__ import annotations

import pandas as pd
import pytest

from loglens_pipeline.alerts import (
    AlertState,
    PairState,
    incident_start,
    plan_alerts,
    points_from_frame,
)
from loglens_pipeline.alerts.model import Delivery
from loglens_pipeline.alerts.planner import alert_id
from loglens_pipeline_tests.alerts.conftest import alerts_config, at, normal, point

CHANNELS = [
    {"name": "ops", "type": "webhook", "url_env": "OPS_URL"},
    {"name": "chat", "type": "slack", "webhook_url_env": "CHAT_URL"},
]


def config(**overrides):
    return alerts_config(channels=CHANNELS, **overrides)


def fired(minute: int, *, end: int | None = None, firing: bool = True) -> PairState:
    return PairState(
        last_fired_start=at(minute),
        last_fired_end=at(end if end is not None else minute + 5),
        last_fired_incident=incident_start(at(minute), config().group_window_delta),
        firing=firing,
    )


def test_points_of_one_incident_form_one_message_worst_group_first():
    points = [
        point(0, "service=api", value=0.3, score=5),
        point(5, "service=api", value=0.9, score=9),  # api's worst point
        point(0, "service=web", value=0.2, score=4),
        point(5, "service=db", value=0.4, score=12),
        point(5, "service=cart", value=0.02, score=0.2, anomaly=False),
    ]
    plan = plan_alerts(points, AlertState(), config())

    assert len(plan.notifications) == 1
    message = plan.notifications[0]
    assert (message.kind, message.metric, message.channels) == (
        "firing",
        "error_rate",
        ("ops", "chat"),
    )
    assert (message.window_start, message.window_end) == (at(0), at(10))
    assert [i.group_key for i in message.items] == ["service=db", "service=api", "service=web"]
    api = message.items[1]
    assert (api.points, api.value, api.score) == (2, 0.9, 9)
    assert (api.bucket_start, api.bucket_end) == (at(0), at(10))
    assert (api.worst_bucket_start, api.worst_bucket_end) == (at(5), at(10))
    assert not plan.suppressed and not plan.duplicates


def test_incidents_are_group_window_slots_of_each_metric():
    points = [
        point(5, "service=api"),
        point(15, "service=web"),
        point(5, "service=api", metric="p95_latency"),
    ]
    plan = plan_alerts(points, AlertState(), config())
    assert [
        (n.metric, n.window_start, [i.group_key for i in n.items]) for n in plan.notifications
    ] == [
        ("error_rate", at(0), ["service=api"]),
        ("error_rate", at(10), ["service=web"]),
        ("p95_latency", at(0), ["service=api"]),
    ]


def test_a_second_incident_of_a_group_within_cooldown_is_suppressed_with_its_reason():
    points = [point(0), point(20), point(30), point(20, "service=web")]
    plan = plan_alerts(points, AlertState(), config(cooldown="30m"))

    sent = [(n.window_start, [i.group_key for i in n.items]) for n in plan.notifications]
    assert sent == [(at(0), ["service=api"]), (at(20), ["service=web"]), (at(30), ["service=api"])]
    [held] = plan.suppressed
    assert (held.item.group_key, held.item.bucket_start) == ("service=api", at(20))
    assert held.reason.startswith("cooldown: notified for bucket 2026-01-01 10:00 UTC")
    assert "next notification possible from 2026-01-01 10:30 UTC (cooldown 30m)" in held.reason


def test_cooldown_compares_bucket_times_with_the_recorded_state_not_the_clock():
    state = AlertState(pairs={("error_rate", "service=api"): fired(0)})
    plan = plan_alerts([point(25), point(40)], state, config(cooldown="30m"))
    assert [s.item.bucket_start for s in plan.suppressed] == [at(25)]
    assert [n.items[0].bucket_start for n in plan.notifications] == [at(40)]


def test_a_backfill_older_than_the_last_notification_is_suppressed():
    state = AlertState(pairs={("error_rate", "service=api"): fired(120)})
    plan = plan_alerts([point(0)], state, config())
    assert not plan.notifications
    assert plan.suppressed[0].reason.startswith("backfill: anomaly at 2026-01-01 10:00 is older")


def test_min_score_and_metric_selection_suppress_with_reasons():
    points = [
        point(0, "service=api", score=-2.5),
        point(0, "service=web", score=None),
        point(0, "service=db", score=-7.0),
        point(0, metric="p95_latency"),
    ]
    plan = plan_alerts(points, AlertState(), config(min_score=3, metrics=["error_rate"]))

    reasons = {(s.item.metric, s.item.group_key): s.reason for s in plan.suppressed}
    assert reasons == {
        ("error_rate", "service=api"): "below min_score: worst |score| 2.5 < 3",
        ("error_rate", "service=web"): "below min_score: worst |score| missing < 3",
        (
            "p95_latency",
            "service=api",
        ): "metric not selected: 'p95_latency' is not in alerts.metrics",
    }
    assert [i.group_key for i in plan.notifications[0].items] == ["service=db"]


def test_recovery_when_a_firing_group_has_a_normal_latest_point():
    state = AlertState(
        pairs={
            ("error_rate", "service=api"): fired(0),
            ("error_rate", "service=web"): fired(0),
            ("error_rate", "service=db"): fired(0, firing=False),
        }
    )
    points = [
        normal(10, "service=api"),
        normal(15, "service=api"),
        normal(10, "service=web"),
        point(15, "service=web"),  # still anomalous (and in cooldown)
        normal(15, "service=db"),  # not firing
    ]
    plan = plan_alerts(points, state, config())

    [recovery] = plan.notifications
    assert (recovery.kind, recovery.metric) == ("recovery", "error_rate")
    [item] = recovery.items
    assert (item.group_key, item.bucket_start, item.bucket_end) == ("service=api", at(15), at(20))
    assert item.incident_start == at(0) and item.requires is None
    assert item.alert_id == alert_id("recovery", "error_rate", "service=api", at(0))


def test_no_recovery_from_points_not_after_the_firing_or_when_disabled():
    state = AlertState(pairs={("error_rate", "service=api"): fired(20, end=30)})
    assert not plan_alerts([normal(20)], state, config()).notifications  # ends 10:25 <= 10:30
    assert not plan_alerts([normal(30)], state, config(recovery=False)).notifications
    assert plan_alerts([normal(30)], state, config()).notifications[0].kind == "recovery"


def test_a_firing_and_its_recovery_in_one_batch():
    plan = plan_alerts([point(0), point(5), normal(10), normal(15)], AlertState(), config())
    firing, recovery = plan.notifications
    assert (firing.kind, recovery.kind) == ("firing", "recovery")
    assert recovery.items[0].requires == firing.items[0].alert_id
    assert recovery.items[0].worst_bucket_start == at(0)


def test_replays_are_skipped_and_failed_channels_retried():
    api = alert_id("firing", "error_rate", "service=api", at(0))
    web = alert_id("firing", "error_rate", "service=web", at(0))
    db = alert_id("firing", "error_rate", "service=db", at(0))
    state = AlertState(
        pairs={("error_rate", "service=api"): fired(0)},
        deliveries={
            api: Delivery(sent=frozenset({"ops", "chat"})),
            web: Delivery(sent=frozenset({"ops"}), failed=frozenset({"chat"})),
            db: Delivery(suppressed=True),
        },
    )
    points = [point(0, "service=api"), point(0, "service=web"), point(0, "service=db")]
    plan = plan_alerts(points, state, config())

    assert sorted(i.group_key for i in plan.duplicates) == ["service=api", "service=db"]
    [retry] = plan.notifications
    assert retry.retry and retry.channels == ("chat",)
    assert [i.group_key for i in retry.items] == ["service=web"]
    assert not plan.suppressed


def test_nothing_is_planned_without_channels():
    plan = plan_alerts([point(0)], AlertState(), alerts_config())
    assert not plan.notifications and not plan.suppressed and not plan.duplicates


def test_incident_slots_are_aligned_to_the_epoch():
    window = config(group_window="15m").group_window_delta
    assert incident_start(at(14), window) == at(0)
    assert incident_start(at(15), window) == at(15)


def test_points_from_a_per_metric_frame_with_group_columns():
    frame = pd.DataFrame(
        {
            "bucket_start": [pd.Timestamp("2026-01-01 10:00", tz="UTC")],
            "bucket_end": [pd.Timestamp("2026-01-01 10:05", tz="UTC")],
            "service": ["api"],
            "host": [None],
            "value": [0.5],
            "score": [float("nan")],
            "is_anomaly": [True],
        }
    )
    [p] = points_from_frame(frame, metric="error_rate", group_columns=["service", "host"])
    assert (p.metric, p.group_key, p.bucket_start, p.score) == (
        "error_rate",
        "service=api, host=",
        at(0),
        None,
    )
    assert p.expected is None and p.is_anomaly is True
    with pytest.raises(ValueError, match="lacks column"):
        points_from_frame(frame.drop(columns=["score"]), metric="m", group_columns=["service"])
