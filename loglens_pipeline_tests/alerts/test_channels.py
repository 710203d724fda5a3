"""Senders against real local servers: what arrives, and failures as results, never exceptions."""

from __future__ import annotations

import json

from loglens_pipeline.alerts import AlertState, Notification, build_sender, plan_alerts
from loglens_pipeline.config.alerts import AlertsConfig
from loglens_pipeline_tests.alerts.conftest import free_port, normal, point

TOKEN_PATH = "/services/T000/B000/XXXXSECRET"


def channel(**spec):
    return AlertsConfig.model_validate({"channels": [spec]}).channels[0]


def firing() -> Notification:
    points = [
        point(0, "service=api", value=0.31, score=8.4),
        point(5, "service=api", value=0.2, score=5.0),
        point(5, "service=<web> & co", value=0.12, score=-4.5),
    ]
    config = AlertsConfig.model_validate(
        {"channels": [{"name": "x", "type": "slack", "webhook_url_env": "X"}]}
    )
    return plan_alerts(points, AlertState(), config).notifications[0]


def recovery() -> Notification:
    config = AlertsConfig.model_validate(
        {"channels": [{"name": "x", "type": "slack", "webhook_url_env": "X"}]}
    )
    return plan_alerts([point(0), normal(10)], AlertState(), config).notifications[1]


def webhook(env: dict, **extra):
    spec = {"name": "ops", "type": "webhook", "url_env": "OPS_URL", **extra}
    return build_sender(channel(**spec), env)


def slack(env: dict, **extra):
    spec = {"name": "chat", "type": "slack", "webhook_url_env": "CHAT_URL", **extra}
    return build_sender(channel(**spec), env)


def email(port: int, env: dict | None = None, **extra):
    spec = {
        "name": "mail",
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "from": "LogLens <loglens@example.com>",
        "to": ["oncall@example.com", "sre@example.com"],
        "starttls": False,
        "timeout_seconds": 2,
        **extra,
    }
    return build_sender(channel(**spec), env or {})


def test_webhook_posts_the_documented_json_with_headers_from_the_environment(http_server):
    env = {
        "OPS_URL": http_server.url("/alerts?token=abc123"),
        "OPS_HEADERS": json.dumps({"Authorization": "Bearer t0ken"}),
    }
    result = webhook(env, headers_env="OPS_HEADERS").send(firing())

    assert (result.channel, result.ok, result.status, result.reason) == ("ops", True, "sent", None)
    [request] = http_server.requests
    assert request.path == "/alerts?token=abc123"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0ken"
    body = request.body
    assert {k: body[k] for k in ("version", "source", "kind", "metric", "retry")} == {
        "version": 1,
        "source": "loglens",
        "kind": "firing",
        "metric": "error_rate",
        "retry": False,
    }
    assert (body["window_start"], body["window_end"]) == (
        "2026-01-01T10:00:00Z",
        "2026-01-01T10:10:00Z",
    )
    assert body["title"] == "[LogLens] error_rate: 2 anomalous groups, 2026-01-01 10:00-10:10 UTC"
    api, web = body["groups"]
    assert api == {
        "alert_id": api["alert_id"],
        "group_key": "service=api",
        "incident_start": "2026-01-01T10:00:00Z",
        "bucket_start": "2026-01-01T10:00:00Z",
        "bucket_end": "2026-01-01T10:10:00Z",
        "worst_bucket_start": "2026-01-01T10:00:00Z",
        "worst_bucket_end": "2026-01-01T10:05:00Z",
        "value": 0.31,
        "expected": 0.02,
        "lower": 0.0,
        "upper": 0.05,
        "score": 8.4,
        "points": 2,
    }
    assert (web["group_key"], web["score"]) == ("service=<web> & co", -4.5)
    assert "service=api: value 0.31, expected 0.02 (normal 0 to 0.05), score 8.4" in body["text"]


def test_slack_gets_text_and_blocks(http_server):
    result = slack({"CHAT_URL": http_server.url(TOKEN_PATH)}).send(firing())
    assert result.ok
    [body] = http_server.bodies(TOKEN_PATH)
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "[LogLens] error_rate: 2 anomalous groups, 2026-01-01 10:00-10:10 UTC"
    header, summary, api, web, footer = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert summary["text"]["type"] == "mrkdwn"
    assert summary["text"]["text"].startswith("*error_rate* anomalous in 2 groups")
    assert api["type"] == "section"
    assert api["text"]["text"].startswith("*service=api*: value 0.31, expected 0.02")
    assert web["text"]["text"].startswith("*service=&lt;web&gt; &amp; co*: value 0.12")
    assert footer["type"] == "context"
    assert footer["elements"][0]["text"].startswith("LogLens notification ")


def test_slack_recovery_message(http_server):
    assert slack({"CHAT_URL": http_server.url()}).send(recovery()).ok
    [body] = http_server.bodies()
    assert body["text"] == "[LogLens] RESOLVED error_rate: 1 group back to normal"
    assert "back to normal in 1 group" in body["blocks"][1]["text"]["text"]
    assert "alerting since 2026-01-01 10:00 UTC" in body["blocks"][2]["text"]["text"]


def test_email_subject_body_and_login(smtp_server):
    env = {"SMTP_USER": "alerts", "SMTP_PASSWORD": "s3cret"}
    sender = email(smtp_server.port, env, username_env="SMTP_USER", password_env="SMTP_PASSWORD")
    result = sender.send(firing())

    assert result.ok, result.reason
    [mail] = smtp_server.messages
    assert mail.login == "alerts"
    assert mail.mail_from == "loglens@example.com"
    assert mail.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    message = mail.message
    assert (
        message["Subject"] == "[LogLens] error_rate: 2 anomalous groups, 2026-01-01 10:00-10:10 UTC"
    )
    assert message["To"] == "oncall@example.com, sre@example.com"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert "Metric error_rate is anomalous in 2 groups" in body
    assert "  - service=api: value 0.31, expected 0.02 (normal 0 to 0.05), score 8.4 at" in body
    assert "SELECT * FROM raw.alert_history WHERE metric = 'error_rate'" in body


def test_email_recovery_subject(smtp_server):
    assert email(smtp_server.port).send(recovery()).ok
    assert smtp_server.messages[0].message["Subject"] == (
        "[LogLens] RESOLVED error_rate: 1 group back to normal"
    )


def test_refused_connections_are_failed_results():
    down = f"http://127.0.0.1:{free_port()}/hook"
    for sender in (webhook({"OPS_URL": down}), slack({"CHAT_URL": down}), email(free_port())):
        result = sender.send(firing())
        assert (result.ok, result.status) == (False, "failed")
        assert result.reason.startswith("connection failed:")
        assert "refused" in result.reason.lower()


def test_http_errors_are_failed_results_without_the_url(http_server):
    http_server.status, http_server.reply = 404, "no_service {path}"
    result = slack({"CHAT_URL": http_server.url(TOKEN_PATH)}).send(firing())
    assert not result.ok
    assert result.reason == "HTTP 404 Not Found: no_service ***"

    http_server.status, http_server.reply = 500, "boom"
    result = webhook({"OPS_URL": http_server.url()}).send(firing())
    assert result.reason == "HTTP 500 Internal Server Error: boom"


def test_a_redirect_is_not_followed(http_server):
    http_server.status, http_server.redirect_to = 302, "http://127.0.0.1:1/elsewhere"
    result = webhook({"OPS_URL": http_server.url()}).send(firing())
    assert not result.ok and result.reason.startswith("HTTP 302")
    assert len(http_server.requests) == 1


def test_a_slow_endpoint_times_out(http_server):
    http_server.delay = 1.0
    result = webhook({"OPS_URL": http_server.url()}, timeout_seconds=0.2).send(firing())
    assert (result.ok, result.reason) == (False, "timed out after 0.2s")


def test_missing_or_bad_environment_variables_fail_the_delivery():
    assert webhook({}).send(firing()).reason == "env var OPS_URL not set"
    assert slack({"CHAT_URL": "  "}).send(firing()).reason == "env var CHAT_URL is empty"
    assert webhook({"OPS_URL": "ftp://example.com/x"}).send(firing()).reason == (
        "env var OPS_URL does not hold an http(s) URL"
    )
    bad_headers = webhook({"OPS_URL": "http://127.0.0.1:1/", "H": "Bearer x"}, headers_env="H")
    assert bad_headers.send(firing()).reason.startswith("env var H must hold a JSON object")
    mail = email(1, {"SMTP_USER": "u"}, username_env="SMTP_USER", password_env="SMTP_PASSWORD")
    assert mail.send(firing()).reason == "env var SMTP_PASSWORD not set"


def test_the_environment_is_read_at_send_time(http_server, monkeypatch):
    sender = build_sender(channel(name="ops", type="webhook", url_env="LOGLENS_TEST_HOOK"))
    monkeypatch.delenv("LOGLENS_TEST_HOOK", raising=False)
    assert sender.send(firing()).reason == "env var LOGLENS_TEST_HOOK not set"
    monkeypatch.setenv("LOGLENS_TEST_HOOK", http_server.url())
    assert sender.send(firing()).ok


def test_smtp_errors_are_failed_results(smtp_server):
    wrong = {"SMTP_USER": "alerts", "SMTP_PASSWORD": "wrong"}
    sender = email(smtp_server.port, wrong, username_env="SMTP_USER", password_env="SMTP_PASSWORD")
    result = sender.send(firing())
    assert not result.ok and result.reason.startswith("SMTP error:")
    assert "wrong" not in result.reason
    # STARTTLS required but this server offers no TLS
    result = email(smtp_server.port, starttls=True).send(firing())
    assert not result.ok and "STARTTLS" in result.reason
    assert smtp_server.messages == []
