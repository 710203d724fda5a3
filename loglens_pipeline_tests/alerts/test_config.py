"""The `alerts:` block: the documented example is valid; mistakes give clear, secret-free errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from loglens_pipeline.config import ConfigError
from loglens_pipeline.config.alerts import AlertsConfig, EmailChannel, WebhookChannel
from loglens_pipeline.config.loader import validate_model
from loglens_pipeline.config.paths import REPO_ROOT

FILE = Path("configs/loglens.yaml")
SECRET = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def errors(data: dict) -> str:
    """The message a user sees for `alerts: <data>` (the project's loader formatting)."""
    with pytest.raises(ConfigError) as info:
        validate_model(AlertsConfig, data, FILE)
    return str(info.value)


def documented_example() -> dict:
    text = (REPO_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(alerts:.*?)```", text, re.S).group(1)
    return yaml.safe_load(block)["alerts"]


def test_the_documented_example_is_valid():
    config = AlertsConfig.model_validate(documented_example())
    assert [c.type for c in config.channels] == ["webhook", "slack", "email"]
    mail = config.channels[2]
    assert isinstance(mail, EmailChannel)
    assert mail.from_ == "LogLens <loglens@example.com>" and mail.starttls
    assert config.cooldown_delta == timedelta(minutes=30)
    assert config.selects("error_rate") and not config.selects("other")


def test_defaults_configure_nothing():
    config = AlertsConfig()
    assert config.channels == [] and config.recovery and config.min_score is None
    assert (config.cooldown_delta, config.group_window_delta) == (
        timedelta(minutes=30),
        timedelta(minutes=10),
    )
    assert config.selects("anything")


def test_channels_store_env_var_names_only():
    channel = AlertsConfig.model_validate(
        {"channels": [{"name": "ops", "type": "webhook", "url_env": "OPS_URL"}]}
    ).channels[0]
    assert isinstance(channel, WebhookChannel)
    assert channel.model_dump() == {
        "name": "ops",
        "timeout_seconds": 5.0,
        "type": "webhook",
        "url_env": "OPS_URL",
        "headers_env": None,
    }


def test_a_secret_pasted_into_an_env_key_is_refused_without_repeating_it():
    text = errors({"channels": [{"name": "chat", "type": "slack", "webhook_url_env": SECRET}]})
    assert (
        "channels[0] (chat).slack.webhook_url_env: webhook_url_env must be the NAME of an " in text
    )
    assert "not the secret itself" in text
    assert "SECRET" not in text and "hooks.slack.com" not in text


@pytest.mark.parametrize(
    ("key", "instead"),
    [("url", "url_env"), ("headers", "headers_env"), ("token", "url_env")],
)
def test_inline_secret_keys_point_to_their_env_variant(key, instead):
    channel = {"name": "ops", "type": "webhook", "url_env": "OPS_URL", key: SECRET}
    text = errors({"channels": [channel]})
    assert f"channels[0] (ops).webhook: '{key}' is not allowed: secrets come only from " in text
    assert instead in text and "SECRET" not in text


def test_email_password_must_come_from_the_environment():
    channel = {
        "name": "mail",
        "type": "email",
        "smtp_host": "smtp.example.com",
        "from": "a@example.com",
        "to": ["b@example.com"],
        "password": "hunter2",
    }
    text = errors({"channels": [channel]})
    assert "'password' is not allowed" in text and "password_env" in text
    assert "hunter2" not in text


def test_channel_type_problems_name_the_types():
    assert (
        "channels: channels[0] (ops) has unknown type 'sms': use one of webhook, slack, email"
        in (errors({"channels": [{"name": "ops", "type": "sms"}]}))
    )
    assert "channels[0] (ops) needs a 'type': one of webhook, slack, email" in errors(
        {"channels": [{"name": "ops", "url_env": "X"}]}
    )


def test_missing_and_unknown_keys_per_type():
    text = errors({"channels": [{"name": "chat", "type": "slack", "url_env": "X"}]})
    assert "channels[0] (chat).slack.webhook_url_env: missing required key" in text
    assert "channels[0] (chat).slack.url_env: unknown key" in text


def test_email_channel_checks():
    base = {"name": "mail", "type": "email", "smtp_host": "h", "from": "a@example.com"}
    assert "to: List should have at least 1 item" in errors({"channels": [{**base, "to": []}]})
    assert "'oncall' is not an e-mail address" in errors({"channels": [{**base, "to": ["oncall"]}]})
    text = errors({"channels": [{**base, "to": ["b@example.com"], "username_env": "SMTP_USER"}]})
    assert "username_env and password_env go together: set both or neither" in text
    assert "smtp_port: Input should be less than or equal to 65535" in errors(
        {"channels": [{**base, "to": ["b@example.com"], "smtp_port": 70000}]}
    )


def test_durations_metrics_and_names():
    text = errors(
        {
            "cooldown": "30 minutes",
            "group_window": "2d",
            "metrics": [],
            "min_score": -1,
            "channels": [
                {"name": "ops", "type": "slack", "webhook_url_env": "A"},
                {"name": "ops", "type": "slack", "webhook_url_env": "B"},
            ],
        }
    )
    assert (
        "cooldown: invalid duration '30 minutes': use a positive number with s, m, h or d" in text
    )
    assert "group_window: group_window '2d' is longer than a day" in text
    assert "metrics: an empty list would alert on no metric: omit 'metrics'" in text
    assert "min_score: Input should be greater than or equal to 0" in text
    assert "channels: channel name 'ops' is used twice" in text
    assert "5 configuration errors" in text
