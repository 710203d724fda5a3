"""Typed models for the `alerts:` block of `configs/loglens.yaml`: channels, cooldown, grouping.

Secrets never live in YAML: a channel names the *environment variables* that hold its URL or
credentials, and the sender reads them when it sends. Semantics are in docs/alerts.md.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from loglens_pipeline.config.base import NAME_PATTERN, StrictModel, require_unique_names
from loglens_pipeline.config.metrics import parse_duration

CHANNEL_TYPES = ("webhook", "slack", "email")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_GROUP_WINDOW = timedelta(days=1)
# Keys people write when they paste a secret into YAML, and the key they should use instead.
_SECRET_KEYS = {
    "url": "url_env",
    "webhook_url": "webhook_url_env",
    "headers": "headers_env",
    "username": "username_env",
    "password": "password_env",
    "token": "an environment variable named by url_env / headers_env",
}


def _env_name(value: str | None, key: str) -> str | None:
    """An environment variable's name; the value itself is never echoed (it may be a secret)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise ValueError(
            f"{key} must be the NAME of an environment variable (letters, digits, _; e.g. "
            "LOGLENS_ALERT_URL), not the secret itself: export the URL or credential in that "
            "variable"
        )
    return value


def _refuse_inline_secrets(data: Any) -> Any:
    if isinstance(data, dict):
        for key, instead in _SECRET_KEYS.items():
            if key in data:
                raise ValueError(
                    f"'{key}' is not allowed: secrets come only from environment variables; "
                    f"use {instead} with the variable's name"
                )
    return data


class _Channel(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        return _refuse_inline_secrets(data)


class WebhookChannel(_Channel):
    """Generic webhook: a JSON POST of the documented payload to the URL in `url_env`."""

    type: Literal["webhook"]
    url_env: str
    headers_env: str | None = Field(
        default=None, description="env var holding a JSON object of extra HTTP headers"
    )

    @field_validator("url_env", "headers_env", mode="before")
    @classmethod
    def _env(cls, value: Any, info) -> Any:
        return _env_name(value, info.field_name)


class SlackChannel(_Channel):
    """Slack incoming webhook; the URL (it contains the token) is in `webhook_url_env`."""

    type: Literal["slack"]
    webhook_url_env: str

    @field_validator("webhook_url_env", mode="before")
    @classmethod
    def _env(cls, value: Any, info) -> Any:
        return _env_name(value, info.field_name)


class EmailChannel(_Channel):
    """Plain-text e-mail through an SMTP server; credentials (optional) from env vars."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["email"]
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = True

    @field_validator("username_env", "password_env", mode="before")
    @classmethod
    def _env(cls, value: Any, info) -> Any:
        return _env_name(value, info.field_name)

    @field_validator("from_", "to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in parseaddr(address)[1]:
                raise ValueError(
                    f"{address!r} is not an e-mail address (e.g. alerts@example.com or "
                    "'LogLens <alerts@example.com>')"
                )
        return value

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> EmailChannel:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together: set both or neither")
        return self


ChannelConfig = Annotated[WebhookChannel | SlackChannel | EmailChannel, Field(discriminator="type")]


class AlertsConfig(StrictModel):
    """Where anomaly notifications go, and when they are held back (see docs/alerts.md)."""

    channels: list[ChannelConfig] = Field(default_factory=list)
    cooldown: str = Field(
        default="30m", description="per metric and group: at most one notification per cooldown"
    )
    group_window: str = Field(
        default="10m", description="anomalies of one metric in one window form one message"
    )
    recovery: bool = True
    metrics: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(
        default=None, description="metric names to alert on; omitted: every metric"
    )
    min_score: float | None = Field(
        default=None, ge=0, description="anomalies whose |score| is lower are suppressed"
    )

    @field_validator("channels", mode="before")
    @classmethod
    def _known_types(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        for index, channel in enumerate(value):
            if not isinstance(channel, dict):
                continue
            label = f"channels[{index}]" + (f" ({channel['name']})" if "name" in channel else "")
            kind = channel.get("type")
            if kind is None:
                raise ValueError(f"{label} needs a 'type': one of {', '.join(CHANNEL_TYPES)}")
            if kind not in CHANNEL_TYPES:
                raise ValueError(
                    f"{label} has unknown type {kind!r}: use one of {', '.join(CHANNEL_TYPES)}"
                )
        return value

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, channels: list[ChannelConfig]) -> list[ChannelConfig]:
        return require_unique_names(channels, "channel")

    @field_validator("cooldown")
    @classmethod
    def _valid_cooldown(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("group_window")
    @classmethod
    def _valid_group_window(cls, value: str) -> str:
        if parse_duration(value) > MAX_GROUP_WINDOW:
            raise ValueError(f"group_window {value!r} is longer than a day")
        return value

    @field_validator("metrics")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError(
                "an empty list would alert on no metric: omit 'metrics' to alert on all of them"
            )
        return value

    @property
    def cooldown_delta(self) -> timedelta:
        return parse_duration(self.cooldown)

    @property
    def group_window_delta(self) -> timedelta:
        return parse_duration(self.group_window)

    def selects(self, metric: str) -> bool:
        """Whether anomalies of `metric` may be notified at all."""
        return self.metrics is None or metric in self.metrics

    def channel(self, name: str) -> ChannelConfig:
        return next(c for c in self.channels if c.name == name)


__all__ = [
    "AlertsConfig",
    "ChannelConfig",
    "EmailChannel",
    "SlackChannel",
    "WebhookChannel",
]
