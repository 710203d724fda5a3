"""Real local servers for alert delivery: an HTTP server and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from loglens_pipeline.alerts import AnomalyPoint
from loglens_pipeline.config.alerts import AlertsConfig

T0 = datetime(2026, 1, 1, 10, 0)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def point(
    minute: int,
    group: str = "service=api",
    *,
    metric: str = "error_rate",
    value: float = 0.5,
    score: float | None = 6.0,
    anomaly: bool = True,
    size: int = 5,
) -> AnomalyPoint:
    """A point of a 5-minute bucket starting `minute` minutes after 10:00 on 2026-01-01."""
    return AnomalyPoint(
        metric=metric,
        group_key=group,
        bucket_start=at(minute),
        bucket_end=at(minute + size),
        value=value,
        expected=0.02,
        lower=0.0,
        upper=0.05,
        score=score,
        is_anomaly=anomaly,
    )


def normal(minute: int, group: str = "service=api", **kwargs) -> AnomalyPoint:
    return point(minute, group, value=0.02, score=0.1, anomaly=False, **kwargs)


def free_port() -> int:
    """A port nobody listens on (bound and released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class HttpServer:
    """Records every POST; answers `status` (after `delay` seconds) with `reply` as the body."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    reply: str = "ok"
    delay: float = 0.0
    redirect_to: str | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str | None = None) -> list[dict]:
        return [r.body for r in self.requests if path is None or r.path == path]


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state: HttpServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, dict(self.headers), json.loads(body)))
            time.sleep(state.delay)
            reply = state.reply.replace("{path}", self.path).encode()
            self.send_response(state.status)
            if state.redirect_to:
                self.send_header("Location", state.redirect_to)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = HttpServer(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpServer:
    port: int
    messages: list[Mail] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1; AUTH offered (user `alerts`, password `s3cret`), not required."""
    controller_module = pytest.importorskip(
        "aiosmtpd.controller", reason="aiosmtpd (dev dependency) is needed for the e-mail tests"
    )
    from aiosmtpd.smtp import AuthResult, LoginPassword

    state = SmtpServer(free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            data = session.auth_data if session.authenticated else None
            login = data.login.decode() if isinstance(data, LoginPassword) else None
            message = message_from_bytes(envelope.original_content, policy=policy.default)
            state.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message, login))
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"alerts", b"s3cret")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    controller = controller_module.Controller(
        Handler(),
        hostname="127.0.0.1",
        port=state.port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not go through a proxy configured on the machine."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        yield conn
    finally:
        conn.close()


def alerts_config(**overrides) -> AlertsConfig:
    return AlertsConfig.model_validate(overrides)
