"""Deliver a notification: generic webhook, Slack incoming webhook, e-mail over SMTP.

Senders never raise: every outcome is a `SendResult` (sent, or failed with a reason). Secrets
are read from the environment at send time, never stored, and never appear in a reason: URLs,
header values and passwords are masked as `***`.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from loglens_pipeline.alerts.messages import email_message, slack_payload, webhook_payload
from loglens_pipeline.alerts.model import Notification, SendResult
from loglens_pipeline.config.alerts import (
    AlertsConfig,
    ChannelConfig,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)

USER_AGENT = "loglens-alerts/1"
MAX_REASON = 500
NOT_HTTP = "not an http(s) URL"


class Sender(Protocol):
    """Anything with a channel `name` that can deliver a notification without raising."""

    name: str

    def send(self, notification: Notification) -> SendResult: ...


class _MissingEnv(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET and may leak the URL: report it as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _clean(reason: str, secrets: list[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        reason = reason.replace(secret, "***")
    reason = re.sub(r"\s+", " ", reason).strip()
    return reason[:MAX_REASON]


class _EnvSender:
    def __init__(self, config: ChannelConfig, environ: Mapping[str, str] | None = None):
        self.config = config
        self.name = config.name
        self._environ = os.environ if environ is None else environ
        self._secrets: list[str] = []

    def env(self, name: str) -> str:
        value = self._environ.get(name)
        if value is None:
            raise _MissingEnv(f"env var {name} not set")
        if not value.strip():
            raise _MissingEnv(f"env var {name} is empty")
        self._secrets.append(value)
        return value

    def url(self, name: str) -> str:
        """A URL from the environment; its path and query (tokens, often) are masked too."""
        url = self.env(name)
        parts = urlsplit(url)
        self._secrets += [p for p in (parts.path, parts.query) if len(p) > 1]
        return url

    def send(self, notification: Notification) -> SendResult:
        self._secrets = []
        try:
            ok, reason = self._deliver(notification)
        except _MissingEnv as exc:
            ok, reason = False, str(exc)
        except Exception as exc:  # a sender must never raise into the pipeline
            ok, reason = False, f"unexpected error: {type(exc).__name__}: {exc}"
        return SendResult(self.name, ok, None if reason is None else _clean(reason, self._secrets))

    def _deliver(self, notification: Notification) -> tuple[bool, str | None]:
        """(delivered, reason): the reason explains a failure or qualifies a success."""
        raise NotImplementedError


def post_json(url: str, payload: Any, headers: Mapping[str, str], timeout: float) -> str | None:
    """POST `payload` as JSON; None on a 2xx answer, else the reason (the URL may appear in it)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return NOT_HTTP
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    try:
        # Built per request: the proxy settings (HTTPS_PROXY, NO_PROXY) are read from the
        # environment now, like the URL.
        opener = urllib.request.build_opener(_NoRedirects)
        with opener.open(request, timeout=timeout) as response:
            response.read(4096)
        return None
    except HTTPError as exc:
        try:
            body = exc.read(300).decode("utf-8", "replace")
        except Exception:
            body = ""
        return f"HTTP {exc.code} {exc.reason}" + (f": {body}" if body.strip() else "")
    except TimeoutError:
        return f"timed out after {timeout:g}s"
    except URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return f"timed out after {timeout:g}s"
        return f"connection failed: {exc.reason}"
    except OSError as exc:
        return f"connection failed: {exc}"


def _http_outcome(reason: str | None, env_name: str) -> tuple[bool, str | None]:
    if reason is None:
        return True, None
    if reason == NOT_HTTP:
        return False, f"env var {env_name} does not hold an http(s) URL"
    return False, reason


class WebhookSender(_EnvSender):
    """JSON POST of `messages.webhook_payload` to the URL in `url_env`."""

    config: WebhookChannel

    def headers(self) -> dict[str, str]:
        if self.config.headers_env is None:
            return {}
        raw = self.env(self.config.headers_env)
        try:
            headers = json.loads(raw)
        except json.JSONDecodeError:
            headers = None
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise _MissingEnv(
                f"env var {self.config.headers_env} must hold a JSON object of header names to "
                'string values, e.g. {"Authorization": "Bearer ..."}'
            )
        self._secrets.extend(headers.values())
        return headers

    def _deliver(self, notification: Notification) -> tuple[bool, str | None]:
        url = self.url(self.config.url_env)
        headers = self.headers()
        reason = post_json(url, webhook_payload(notification), headers, self.config.timeout_seconds)
        return _http_outcome(reason, self.config.url_env)


class SlackSender(_EnvSender):
    """Slack incoming webhook: `{"text": ..., "blocks": [...]}` to the URL in `webhook_url_env`."""

    config: SlackChannel

    def _deliver(self, notification: Notification) -> tuple[bool, str | None]:
        url = self.url(self.config.webhook_url_env)
        reason = post_json(url, slack_payload(notification), {}, self.config.timeout_seconds)
        return _http_outcome(reason, self.config.webhook_url_env)


class EmailSender(_EnvSender):
    """Plain-text e-mail over SMTP (STARTTLS unless `starttls: false`, login when configured)."""

    config: EmailChannel

    def _deliver(self, notification: Notification) -> tuple[bool, str | None]:
        config = self.config
        login = None
        if config.username_env and config.password_env:
            login = (self.env(config.username_env), self.env(config.password_env))
        message = email_message(notification, config.from_, config.to)
        try:
            with smtplib.SMTP(
                config.smtp_host, config.smtp_port, timeout=config.timeout_seconds
            ) as smtp:
                if config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if login is not None:
                    smtp.login(*login)
                refused = smtp.send_message(message)
        except smtplib.SMTPException as exc:
            return False, f"SMTP error: {exc}"
        except TimeoutError:
            return False, f"timed out after {config.timeout_seconds:g}s"
        except OSError as exc:
            return False, f"connection failed: {exc}"
        if refused:  # accepted for the other recipients
            return True, f"recipients refused: {', '.join(sorted(refused))}"
        return True, None


_SENDERS: dict[str, type[_EnvSender]] = {
    "webhook": WebhookSender,
    "slack": SlackSender,
    "email": EmailSender,
}


def build_sender(config: ChannelConfig, environ: Mapping[str, str] | None = None) -> Sender:
    """The sender for one configured channel; `environ` defaults to `os.environ` (read live)."""
    return _SENDERS[config.type](config, environ)


def build_senders(
    config: AlertsConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Sender]:
    return {channel.name: build_sender(channel, environ) for channel in config.channels}
