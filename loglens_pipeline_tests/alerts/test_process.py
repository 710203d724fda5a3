"""`process_anomalies` end to end: a real DuckDB file, a real HTTP server and a real SMTP server."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd
import pytest

from loglens_pipeline.alerts import TABLE, process_anomalies, read_pair_states
from loglens_pipeline.config.alerts import AlertsConfig
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline_tests.alerts.conftest import at, free_port, normal, point

NOW = datetime(2026, 1, 2, 8, 0)


@pytest.fixture
def env(http_server):
    return {"OPS_URL": http_server.url("/ops"), "CHAT_URL": http_server.url("/chat")}


@pytest.fixture
def config(smtp_server) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "channels": [
                {"name": "ops", "type": "webhook", "url_env": "OPS_URL"},
                {"name": "chat", "type": "slack", "webhook_url_env": "CHAT_URL"},
                {
                    "name": "mail",
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_server.port,
                    "from": "loglens@example.com",
                    "to": ["oncall@example.com"],
                    "starttls": False,
                    "timeout_seconds": 2,
                },
            ],
            "cooldown": "30m",
            "group_window": "10m",
        }
    )


def history(conn, where: str = "TRUE") -> list[tuple]:
    return conn.execute(
        f"""SELECT kind, status, channel, group_key, bucket_start, reason FROM {TABLE}
            WHERE {where} ORDER BY kind, channel NULLS FIRST, group_key, bucket_start"""
    ).fetchall()


def frame(points) -> pd.DataFrame:
    return pd.DataFrame([p.__dict__ for p in points])


def spike() -> list:
    """One incident (10:00-10:10) of error_rate in three groups, many anomalous points."""
    return [
        point(0, "service=api", score=5),
        point(5, "service=api", value=0.9, score=9),
        point(0, "service=web", score=4),
        point(5, "service=web", score=4.5),
        point(5, "service=db", score=7),
        normal(0, "service=cart"),
        normal(5, "service=cart"),
    ]


def test_one_incident_is_one_message_per_channel_and_recorded(
    warehouse, config, env, http_server, smtp_server
):
    report = process_anomalies(warehouse, frame(spike()), config, NOW, environ=env)

    assert (report.sent, report.failed, len(report.deliveries)) == (3, 0, 1)
    [webhook] = http_server.bodies("/ops")
    assert [g["group_key"] for g in webhook["groups"]] == [
        "service=api",
        "service=db",
        "service=web",
    ]
    assert webhook["groups"][0]["points"] == 2 and webhook["groups"][0]["value"] == 0.9
    [slack] = http_server.bodies("/chat")
    assert slack["text"] == "[LogLens] error_rate: 3 anomalous groups, 2026-01-01 10:00-10:10 UTC"
    [mail] = smtp_server.messages
    assert mail.message["Subject"] == slack["text"]

    rows = history(warehouse)
    assert len(rows) == 9  # 3 groups x 3 channels
    assert {(kind, status) for kind, status, *_ in rows} == {("firing", "sent")}
    stored = warehouse.execute(
        f"""SELECT DISTINCT notification_id, incident_start, message, created_at FROM {TABLE}"""
    ).fetchall()
    [(notification_id, incident, message, created)] = stored
    assert notification_id == webhook["notification_id"]
    assert (incident, created) == (at(0), NOW)
    assert message == webhook["text"]
    assert report.as_metadata()["alert_deliveries_sent"] == 3


def test_second_incident_within_cooldown_is_suppressed_then_sent_after_it(
    warehouse, config, env, http_server, smtp_server
):
    process_anomalies(warehouse, [point(0)], config, NOW, environ=env)
    report = process_anomalies(warehouse, [point(20)], config, NOW, environ=env)

    assert report.sent == 0 and len(http_server.requests) == 2  # webhook + slack of the first
    [held] = report.suppressed
    assert held.reason.startswith("cooldown: notified for bucket 2026-01-01 10:00 UTC")
    [(_, status, channel, group, bucket, reason)] = history(warehouse, "status = 'suppressed'")
    assert (status, channel, group, bucket) == ("suppressed", None, "service=api", at(20))
    assert reason == held.reason

    report = process_anomalies(warehouse, [point(30)], config, NOW, environ=env)
    assert report.sent == 3 and len(smtp_server.messages) == 2


def test_recovery_message_when_the_latest_point_is_normal(
    warehouse, config, env, http_server, smtp_server
):
    process_anomalies(warehouse, [point(0), point(5)], config, NOW, environ=env)
    assert read_pair_states(warehouse)[("error_rate", "service=api")].firing

    report = process_anomalies(warehouse, [point(10), normal(15)], config, NOW, environ=env)

    [delivered] = report.deliveries
    assert delivered.notification.kind == "recovery" and report.sent == 3
    recovery = http_server.bodies("/ops")[-1]
    assert (recovery["kind"], recovery["groups"][0]["incident_start"]) == (
        "recovery",
        "2026-01-01T10:00:00Z",
    )
    assert http_server.bodies("/chat")[-1]["text"] == (
        "[LogLens] RESOLVED error_rate: 1 group back to normal"
    )
    assert smtp_server.messages[-1].message["Subject"].startswith("[LogLens] RESOLVED error_rate")
    assert not read_pair_states(warehouse)[("error_rate", "service=api")].firing
    # the point at 10:10 is still in cooldown of the firing: suppressed, not a second message
    assert [s.reason.split(":")[0] for s in report.suppressed] == ["cooldown"]

    # nothing more to recover
    report = process_anomalies(warehouse, [normal(20)], config, NOW, environ=env)
    assert not report.deliveries


def test_a_spike_and_its_recovery_in_one_batch(warehouse, config, env, http_server):
    report = process_anomalies(warehouse, [point(0), normal(5)], config, NOW, environ=env)
    assert [d.notification.kind for d in report.deliveries] == ["firing", "recovery"]
    assert [b["kind"] for b in http_server.bodies("/ops")] == ["firing", "recovery"]


def test_replaying_the_same_anomalies_sends_nothing_twice(
    warehouse, config, env, http_server, smtp_server
):
    points = [*spike(), normal(10, "service=db")]
    first = process_anomalies(warehouse, frame(points), config, NOW, environ=env)
    assert [d.notification.kind for d in first.deliveries] == ["firing", "recovery"]
    requests, mails = len(http_server.requests), len(smtp_server.messages)
    rows = warehouse.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]

    again = process_anomalies(warehouse, frame(points), config, NOW, environ=env)

    assert (again.sent, again.failed, again.rows_written) == (0, 0, 0)
    assert len(again.duplicates) == 3
    assert (len(http_server.requests), len(smtp_server.messages)) == (requests, mails)
    assert warehouse.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows


def test_channels_down_are_recorded_as_failed_and_retried_on_replay(
    warehouse, config, env, http_server, smtp_server
):
    down = {**env, "OPS_URL": f"http://127.0.0.1:{free_port()}/ops"}
    http_server.status = 500

    report = process_anomalies(warehouse, [point(0)], config, NOW, environ=down)

    assert (report.sent, report.failed) == (1, 2)  # only the e-mail went out
    failed = {row[2]: row[5] for row in history(warehouse, "status = 'failed'")}
    assert failed["ops"].startswith("connection failed:") and "refused" in failed["ops"].lower()
    assert failed["chat"] == "HTTP 500 Internal Server Error: ok"
    assert "via ops" in report.as_metadata()["alert_failures"]

    # the endpoints are back: a replay retries the failed channels only
    http_server.status = 200
    retry = process_anomalies(warehouse, [point(0)], config, NOW, environ=env)
    assert sorted(r.channel for d in retry.deliveries for r in d.results) == ["chat", "ops"]
    assert retry.sent == 2 and retry.deliveries[0].notification.retry
    assert len(smtp_server.messages) == 1
    assert http_server.bodies("/ops")[0]["retry"] is True
    assert process_anomalies(warehouse, [point(0)], config, NOW, environ=env).sent == 0


def test_a_missing_env_var_is_a_failed_record(warehouse, config, env, http_server):
    env.pop("CHAT_URL")
    report = process_anomalies(warehouse, [point(0)], config, NOW, environ=env)
    assert report.failed == 1
    assert history(warehouse, "channel = 'chat'")[0][1:3] == ("failed", "chat")
    assert history(warehouse, "channel = 'chat'")[0][5] == "env var CHAT_URL not set"


def test_a_failed_firing_gets_no_recovery(warehouse, smtp_server):
    config = AlertsConfig.model_validate(
        {"channels": [{"name": "ops", "type": "webhook", "url_env": "OPS_URL"}]}
    )
    report = process_anomalies(warehouse, [point(0), normal(5)], config, NOW, environ={})
    assert [d.notification.kind for d in report.deliveries] == ["firing"]
    assert [s.item.kind for s in report.skipped] == ["recovery"]
    assert history(warehouse, "kind = 'recovery'") == []


def test_points_read_from_the_warehouse(warehouse, config, env, http_server):
    warehouse.execute(
        """CREATE TABLE scored AS SELECT * FROM (VALUES
             ('error_rate', 'service=api', TIMESTAMP '2026-01-01 10:00', TIMESTAMP '2026-01-01 10:05',
              0.4, 0.02, 0.0, 0.05, 6.5, true),
             ('error_rate', 'service=api', TIMESTAMP '2026-01-01 10:05', TIMESTAMP '2026-01-01 10:10',
              NULL, NULL, NULL, NULL, NULL, NULL)
           ) t(metric, group_key, bucket_start, bucket_end, value, expected, lower, upper, score, is_anomaly)"""
    )
    scored = warehouse.execute("SELECT * FROM scored").df()
    report = process_anomalies(warehouse, scored, config, NOW, environ=env)
    assert report.sent == 3  # the unscored point (is_anomaly NULL) is no recovery
    assert [b["kind"] for b in http_server.bodies("/ops")] == ["firing"]
    assert http_server.bodies("/ops")[0]["groups"][0]["score"] == 6.5


def test_without_channels_nothing_happens(warehouse):
    report = process_anomalies(warehouse, [point(0)], AlertsConfig(), NOW)
    assert report == type(report)()
    tables = warehouse.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]
    assert tables == 0


def test_the_documented_queries_run(warehouse, config, env):
    process_anomalies(warehouse, [point(0), point(20, "service=web")], config, NOW, environ=env)
    process_anomalies(warehouse, [point(10), normal(25, "service=web")], config, NOW, environ=env)
    text = (REPO_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(.*?)```", text, re.S).group(1)
    queries = [q for q in block.split(";") if q.strip()]
    assert len(queries) == 4
    results = [warehouse.execute(q).fetchall() for q in queries]
    assert results[1] == [(at(10), "suppressed", results[1][0][2])]
    assert [(m, g) for m, g, _ in results[3]] == [("error_rate", "service=api")]
