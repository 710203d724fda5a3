"""Deterministic sample logs: one JSON-lines file per service plus an nginx access log.

The traffic has a diurnal shape, Poisson counts per minute, per-service weights, one injected
incident and a small share of malformed lines. Files are streamed in blocks of about
`BLOCK_EVENTS` requests, with numpy for the random draws and pyarrow string kernels to build
the lines, so memory stays flat and one core writes about a million lines per second.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BLOCK_EVENTS = 50_000
APP_MALFORMED_KINDS = (
    "truncated_json",
    "garbage",
    "invalid_utf8",
    "unparseable_ts",
    "missing_ts",
    "blank",
)
NGINX_MALFORMED_KINDS = ("garbage", "invalid_utf8")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_MINUTE = 60_000
_MS_PER_DAY = 86_400_000
_PEAK_HOUR_UTC = 15.0
# 1 + A*cos(...) gives a peak/trough ratio of (1 + A) / (1 - A) = 3.5.
_DIURNAL_AMPLITUDE = 2.5 / 4.5
_USERS = 5_000
_ZIPF_EXPONENT = 0.75
_DEBUG_SHARE = 0.05
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    weight: float
    ok_status: int
    body_median: float


@dataclass(frozen=True)
class _Service:
    name: str
    weight: float
    hosts: int
    latency_median_ms: float
    latency_sigma: float
    p4xx: float
    p5xx: float
    # Probabilities of 400, 401, 403, 404, 409, 429 among 4xx responses.
    p4xx_codes: tuple[float, ...]
    routes: tuple[_Route, ...]


_CODES_4XX = (400, 401, 403, 404, 409, 429)
_CODES_5XX = (500, 502, 503, 504)
_P_5XX_CODES = (0.3, 0.2, 0.35, 0.15)
_GENERIC_4XX = (0.3, 0.15, 0.05, 0.35, 0.05, 0.1)


def _service(
    name: str,
    weight: float,
    hosts: int,
    latency: tuple[float, float],
    errors: tuple[float, float],
    routes: tuple[_Route, ...],
    p4xx_codes: tuple[float, ...] = _GENERIC_4XX,
) -> _Service:
    return _Service(name, weight, hosts, *latency, *errors, p4xx_codes, routes)


# fmt: off
# name, traffic weight, hosts, (median latency ms, lognormal sigma), (p4xx, p5xx), routes
_SERVICES = (
    _service("checkout", 0.16, 3, (85.0, 0.55), (0.03, 0.004), (
        _Route("GET", "/api/checkout", 0.45, 200, 2400.0),
        _Route("POST", "/api/checkout", 0.35, 201, 700.0),
        _Route("POST", "/api/checkout/confirm", 0.20, 200, 450.0),
    )),
    _service("cart", 0.22, 3, (14.0, 0.5), (0.04, 0.002), (
        _Route("GET", "/api/cart", 0.55, 200, 1800.0),
        _Route("POST", "/api/cart/items", 0.30, 201, 350.0),
        _Route("DELETE", "/api/cart/items", 0.15, 204, 0.0),
    )),
    _service("search", 0.30, 4, (38.0, 0.65), (0.02, 0.003), (
        _Route("GET", "/api/search", 0.75, 200, 9000.0),
        _Route("GET", "/api/search/suggest", 0.25, 200, 1100.0),
    )),
    _service("auth", 0.20, 2, (22.0, 0.45), (0.09, 0.002), (
        _Route("POST", "/api/auth/login", 0.25, 200, 620.0),
        _Route("POST", "/api/auth/refresh", 0.65, 200, 540.0),
        _Route("POST", "/api/auth/logout", 0.10, 204, 0.0),
    ), p4xx_codes=(0.15, 0.65, 0.05, 0.05, 0.0, 0.1)),
    _service("payments", 0.12, 2, (140.0, 0.5), (0.03, 0.004), (
        _Route("POST", "/api/payments", 0.55, 201, 820.0),
        _Route("GET", "/api/payments/status", 0.35, 200, 380.0),
        _Route("POST", "/api/payments/refund", 0.10, 200, 410.0),
    )),
)
# fmt: on
SERVICES = tuple(s.name for s in _SERVICES)

_USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "ShopApp/4.12.0 (iPhone; iOS 18.1; Scale/3.00)",
    "ShopApp/4.12.0 (Android 14; Pixel 8)",
    "okhttp/4.12.0",
    "curl/8.5.0",
)
_P_USER_AGENTS = (0.24, 0.2, 0.12, 0.08, 0.12, 0.1, 0.06, 0.05, 0.02, 0.01)
_REFERERS = (
    "-",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://shop.example.com/checkout",
    "https://shop.example.com/search?q=shoes",
    "https://www.google.com/",
)
_P_REFERERS = (0.55, 0.15, 0.1, 0.08, 0.08, 0.04)

_APP_GARBAGE = (
    b"Traceback (most recent call last):",
    b'  File "/srv/app/handlers.py", line 212, in handle_request',
    b"java.lang.IllegalStateException: connection pool exhausted",
    b"panic: runtime error: index out of range [3] with length 3",
    b"=== log rotated ===",
    b"\x1b[33mWARN\x1b[0m retrying upstream call (attempt 2/3)",
    b"Killed",
)
_NGINX_GARBAGE = (
    b"2026/11/25 13:00:00 [error] 31#31: *4711 upstream timed out (110: Connection timed out)",
    b"nginx: [warn] could not build optimal proxy_headers_hash",
    b"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03",
)
_BAD_TIMESTAMPS = (b"yesterday", b"not-a-time", b"2026-13-45T99:99:99Z", b"")


class _Default(enum.Enum):
    TOKEN = "default"


DEFAULT = _Default.TOKEN
"""Sentinel for `generate_sample_logs(incident=...)`: use `default_incident(start, hours)`."""


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _to_ms(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Incident:
    """An outage window for one service: a share of 5xx, slower and more requests."""

    service: str
    start: datetime
    end: datetime
    error_share: float = 0.35
    latency_factor: float = 8.0
    volume_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"unknown service {self.service!r}; expected one of {SERVICES}")
        object.__setattr__(self, "start", _as_utc(self.start, "incident start"))
        object.__setattr__(self, "end", _as_utc(self.end, "incident end"))
        if self.end <= self.start:
            raise ValueError("incident end must be after its start")
        if not 0.0 <= self.error_share <= 1.0:
            raise ValueError("error_share must be within [0, 1]")
        if self.latency_factor <= 0 or self.volume_factor <= 0:
            raise ValueError("latency_factor and volume_factor must be positive")

    def to_dict(self) -> dict[str, Any]:
        """The incident as JSON-ready values, times as ISO-8601 UTC strings."""
        return {
            "service": self.service,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "error_share": self.error_share,
            "latency_factor": self.latency_factor,
            "volume_factor": self.volume_factor,
        }


@dataclass(frozen=True)
class FileManifest:
    """What was written to one file: line counts by validity and the valid events' time span.

    `first_event_at`/`last_event_at` are the earliest and latest timestamps of valid lines, which
    are the first and last lines' unless out-of-order lines were requested.
    """

    path: str
    source: str
    service: str | None
    total_lines: int
    valid_lines: int
    malformed: dict[str, int]
    first_event_at: datetime | None
    last_event_at: datetime | None
    size_bytes: int

    @property
    def malformed_lines(self) -> int:
        """Number of malformed lines of any kind."""
        return sum(self.malformed.values())

    def to_dict(self) -> dict[str, Any]:
        """The file's entry as JSON-ready values."""
        return {
            "path": self.path,
            "source": self.source,
            "service": self.service,
            "total_lines": self.total_lines,
            "valid_lines": self.valid_lines,
            "malformed_lines": self.malformed_lines,
            "malformed": dict(self.malformed),
            "first_event_at": _iso(self.first_event_at),
            "last_event_at": _iso(self.last_event_at),
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class SampleManifest:
    """Everything `generate_sample_logs` wrote: per-file counts, the incident and totals."""

    start: datetime
    end: datetime
    seed: int
    files: tuple[FileManifest, ...]
    incident: Incident | None
    total_lines: int
    valid_lines: int
    malformed_lines: int

    def file(self, path: str) -> FileManifest:
        """The entry for a path relative to the output folder, such as `app/cart.jsonl`."""
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready values, times as ISO-8601 UTC strings."""
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "seed": self.seed,
            "total_lines": self.total_lines,
            "valid_lines": self.valid_lines,
            "malformed_lines": self.malformed_lines,
            "incident": None if self.incident is None else self.incident.to_dict(),
            "files": [entry.to_dict() for entry in self.files],
        }


def default_start(now: datetime, *, hours: int = 24) -> datetime:
    """The start of a window of `hours` closed hours that ends at the top of `now`'s hour.

    With `now` at 13:25 UTC the last closed hour is 12:00-13:00, so 24 hours of data start at
    13:00 UTC the day before and end at 13:00 UTC today.
    """
    top = _as_utc(now, "now").replace(minute=0, second=0, microsecond=0)
    return top - timedelta(hours=hours)


def default_incident(start: datetime, hours: int) -> Incident:
    """The default incident: payments, 45 minutes (or the whole range if shorter), centred."""
    total = hours * 60
    length = min(45, total)
    begin = _as_utc(start, "start") + timedelta(minutes=(total - length) // 2)
    return Incident("payments", begin, begin + timedelta(minutes=length))


def generate_sample_logs(
    out_dir: Path,
    *,
    start: datetime,
    hours: int = 24,
    lines_per_hour: int = 6000,
    seed: int = 7,
    malformed_fraction: float = 0.005,
    out_of_order_fraction: float = 0.0,
    incident: Incident | _Default | None = DEFAULT,
) -> SampleManifest:
    """Write seeded sample logs under `out_dir` and return a manifest of what was written.

    Writes `app/<service>.jsonl` for each service and `nginx/access.log` (the edge proxy sees
    every request, so it has as many lines as all app files together). `lines_per_hour` is the
    average across all app files over whole days. Each file is written to a `.part` name and
    renamed when complete, so a folder watcher never sees half a file. The same arguments give
    byte-identical files; traffic does not depend on the malformed or out-of-order fractions.
    """
    start = _as_utc(start, "start")
    if hours < 1:
        raise ValueError("hours must be at least 1")
    if lines_per_hour < 1:
        raise ValueError("lines_per_hour must be at least 1")
    if not 0.0 <= malformed_fraction < 1.0:
        raise ValueError("malformed_fraction must be within [0, 1)")
    if not 0.0 <= out_of_order_fraction < 1.0:
        raise ValueError("out_of_order_fraction must be within [0, 1)")
    if isinstance(incident, _Default):
        incident = default_incident(start, hours)

    out_dir = Path(out_dir)
    tables_seq, events_seq, noise_seq = np.random.SeedSequence(seed).spawn(3)
    tables = _Tables.build(np.random.default_rng(tables_seq))
    events_rng = np.random.default_rng(events_seq)
    noise_rng = np.random.default_rng(noise_seq)
    start_ms = _to_ms(start.replace(microsecond=start.microsecond // 1000 * 1000))
    total_minutes = hours * 60

    writers: list[_FileWriter] = []
    try:
        for name in SERVICES:
            writers.append(
                _FileWriter(out_dir, f"app/{name}.jsonl", "app", name, APP_MALFORMED_KINDS)
            )
        writers.append(
            _FileWriter(out_dir, "nginx/access.log", "nginx", None, NGINX_MALFORMED_KINDS)
        )
        minutes_per_block = max(1, BLOCK_EVENTS * 60 // lines_per_hour)
        for first in range(0, total_minutes, minutes_per_block):
            n_minutes = min(minutes_per_block, total_minutes - first)
            ev = _draw_events(
                events_rng, tables, start_ms, first, n_minutes, lines_per_hour, incident
            )
            for code, writer in enumerate(writers[:-1]):
                sel = np.flatnonzero(ev.svc == code)
                if sel.size:
                    t = _shift_out_of_order(noise_rng, ev.t[sel], out_of_order_fraction, start_ms)
                    lines = _app_lines(tables, code, t, ev, sel)
                    writer.write(lines, t, noise_rng, malformed_fraction, _corrupt_app)
            if ev.t.size:
                t = _shift_out_of_order(noise_rng, ev.t, out_of_order_fraction, start_ms)
                lines = _nginx_lines(tables, t, ev)
                # nginx logs whole seconds; the manifest reports what the file says.
                writers[-1].write(
                    lines, t // 1000 * 1000, noise_rng, malformed_fraction, _corrupt_nginx
                )
        files = tuple(writer.finish() for writer in writers)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise

    return SampleManifest(
        start=start,
        end=start + timedelta(hours=hours),
        seed=seed,
        files=files,
        incident=incident,
        total_lines=sum(f.total_lines for f in files),
        valid_lines=sum(f.valid_lines for f in files),
        malformed_lines=sum(f.malformed_lines for f in files),
    )


@dataclass(frozen=True)
class _Tables:
    """Lookup tables: per-event integer codes are turned into text with `take`."""

    weights: np.ndarray
    route_offset: np.ndarray
    route_cdf: np.ndarray
    route_ok: np.ndarray
    route_body: np.ndarray
    host_offset: np.ndarray
    hosts: np.ndarray
    latency_mu: np.ndarray
    latency_sigma: np.ndarray
    p4xx: np.ndarray
    p5xx: np.ndarray
    cdf_4xx: np.ndarray
    cdf_5xx: np.ndarray
    user_cdf: np.ndarray
    referer_cdf: np.ndarray
    user_agent_of_user: np.ndarray
    app_level: tuple[pa.Array, ...]
    app_host: pa.Array
    app_route_msg: pa.Array
    app_status: pa.Array
    app_decimal: pa.Array
    app_user: pa.Array
    app_route_tail: pa.Array
    nginx_client: pa.Array
    nginx_second: pa.Array
    nginx_request: pa.Array
    nginx_status: pa.Array
    nginx_referer: pa.Array
    nginx_user_agent: pa.Array

    @classmethod
    def build(cls, rng: np.random.Generator) -> _Tables:
        routes = [(s, r) for s in _SERVICES for r in s.routes]
        max_routes = max(len(s.routes) for s in _SERVICES)
        route_cdf = np.full((len(_SERVICES), max_routes), 2.0)
        for i, s in enumerate(_SERVICES):
            w = np.array([r.weight for r in s.routes])
            route_cdf[i, : len(w)] = np.cumsum(w / w.sum())
            route_cdf[i, len(w) - 1] = 1.0
        hosts = [f"{s.name}-{k}" for s in _SERVICES for k in range(1, s.hosts + 1)]

        ranks = np.arange(1, _USERS + 1, dtype=np.float64)
        user_cdf = np.cumsum(ranks**-_ZIPF_EXPONENT)
        user_cdf /= user_cdf[-1]
        # Popularity rank -> user number, so the busiest users are not u-00001, u-00002, ...
        user_numbers = rng.permutation(_USERS) + 1
        ips = [
            f"10.{a}.{b}.{c}"
            for a, b, c in zip(
                rng.integers(0, 256, _USERS).tolist(),
                rng.integers(0, 256, _USERS).tolist(),
                rng.integers(1, 255, _USERS).tolist(),
                strict=True,
            )
        ]
        user_agent_of_user = np.searchsorted(_cdf(_P_USER_AGENTS), rng.random(_USERS), side="right")

        def levels(service: str) -> tuple[str, ...]:
            return tuple(
                f'{lvl}", "service": "{service}", "host": "'
                for lvl in ("DEBUG", "INFO", "WARN", "ERROR")
            )

        def status_text(code: int, fmt: str) -> str:
            return fmt.format(code) if 100 <= code <= 599 else ""

        return cls(
            weights=np.array([s.weight for s in _SERVICES]),
            route_offset=np.cumsum([0] + [len(s.routes) for s in _SERVICES[:-1]]),
            route_cdf=route_cdf,
            route_ok=np.array([r.ok_status for _, r in routes]),
            route_body=np.array([r.body_median for _, r in routes]),
            host_offset=np.cumsum([0] + [s.hosts for s in _SERVICES[:-1]]),
            hosts=np.array([s.hosts for s in _SERVICES]),
            latency_mu=np.log([s.latency_median_ms for s in _SERVICES]),
            latency_sigma=np.array([s.latency_sigma for s in _SERVICES]),
            p4xx=np.array([s.p4xx for s in _SERVICES]),
            p5xx=np.array([s.p5xx for s in _SERVICES]),
            cdf_4xx=np.array([_cdf(s.p4xx_codes) for s in _SERVICES]),
            cdf_5xx=_cdf(_P_5XX_CODES),
            user_cdf=user_cdf,
            referer_cdf=_cdf(_P_REFERERS),
            user_agent_of_user=user_agent_of_user,
            app_level=tuple(_strings(levels(s.name)) for s in _SERVICES),
            app_host=_strings([f'{h}", "msg": "' for h in hosts]),
            app_route_msg=_strings([f"{r.method} {r.path} " for _, r in routes]),
            app_status=_strings(
                [status_text(c, '{0}", "status": {0}, "latency_ms": ') for c in range(600)]
            ),
            app_decimal=_strings([f'.{d}, "user_id": "' for d in range(10)]),
            app_user=_strings([f"u-{n:05d}" for n in user_numbers.tolist()]),
            app_route_tail=_strings(
                [
                    f'", "http": {{"method": "{r.method}", "path": "{r.path}"}}}}\n'
                    for _, r in routes
                ]
            ),
            nginx_client=_strings([f"{ips[n - 1]} - - [" for n in user_numbers.tolist()]),
            nginx_second=_strings([f'{s:02d} +0000] "' for s in range(60)]),
            nginx_request=_strings([f'{r.method} {r.path} HTTP/1.1" ' for _, r in routes]),
            nginx_status=_strings([status_text(c, "{0} ") for c in range(600)]),
            nginx_referer=_strings([f' "{ref}" "' for ref in _REFERERS]),
            nginx_user_agent=_strings([f'{ua}"\n' for ua in _USER_AGENTS]),
        )


def _cdf(probabilities: tuple[float, ...]) -> np.ndarray:
    cdf = np.cumsum(probabilities, dtype=np.float64)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


@dataclass(frozen=True)
class _Events:
    """One block of requests across all services, sorted by time."""

    t: np.ndarray
    svc: np.ndarray
    route: np.ndarray
    host: np.ndarray
    user: np.ndarray
    status: np.ndarray
    latency_tenths: np.ndarray
    level: np.ndarray
    body_bytes: np.ndarray
    referer: np.ndarray


def _draw_events(
    rng: np.random.Generator,
    tables: _Tables,
    start_ms: int,
    first_minute: int,
    n_minutes: int,
    lines_per_hour: int,
    incident: Incident | None,
) -> _Events:
    minutes = np.arange(first_minute, first_minute + n_minutes, dtype=np.int64)
    minute_ms = start_ms + minutes * _MS_PER_MINUTE
    hour_of_day = ((minute_ms + _MS_PER_MINUTE // 2) % _MS_PER_DAY) / 3_600_000.0
    diurnal = 1.0 + _DIURNAL_AMPLITUDE * np.cos(2 * math.pi * (hour_of_day - _PEAK_HOUR_UTC) / 24)
    lam = (lines_per_hour / 60.0) * diurnal[:, None] * tables.weights[None, :]
    inc_code, inc_start, inc_end = -1, 0, 0
    if incident is not None:
        inc_code = SERVICES.index(incident.service)
        inc_start, inc_end = _to_ms(incident.start), _to_ms(incident.end)
        overlap = (
            np.clip(
                np.minimum(minute_ms + _MS_PER_MINUTE, inc_end) - np.maximum(minute_ms, inc_start),
                0,
                _MS_PER_MINUTE,
            )
            / _MS_PER_MINUTE
        )
        lam[:, inc_code] *= 1.0 + (incident.volume_factor - 1.0) * overlap

    counts = rng.poisson(lam)
    n_services = len(_SERVICES)
    svc = np.repeat(np.tile(np.arange(n_services, dtype=np.int64), n_minutes), counts.ravel())
    t = np.repeat(minute_ms, counts.sum(axis=1)) + rng.integers(0, _MS_PER_MINUTE, svc.size)
    order = np.argsort(t, kind="stable")
    t, svc = t[order], svc[order]
    n = t.size

    route = tables.route_offset[svc] + (rng.random(n)[:, None] > tables.route_cdf[svc]).sum(axis=1)
    host = tables.host_offset[svc] + (rng.random(n) * tables.hosts[svc]).astype(np.int64)
    user = np.minimum(np.searchsorted(tables.user_cdf, rng.random(n), side="right"), _USERS - 1)

    in_incident = np.zeros(n, dtype=bool)
    if incident is not None:
        in_incident = (svc == inc_code) & (t >= inc_start) & (t < inc_end)
    p5xx = tables.p5xx[svc]
    if incident is not None:
        p5xx = np.where(in_incident, incident.error_share + (1 - incident.error_share) * p5xx, p5xx)
    u = rng.random(n)
    is_5xx = u < p5xx
    is_4xx = ~is_5xx & (u < p5xx + tables.p4xx[svc])
    code_5xx = np.asarray(_CODES_5XX)[np.searchsorted(tables.cdf_5xx, rng.random(n), side="right")]
    code_4xx = np.asarray(_CODES_4XX)[(rng.random(n)[:, None] > tables.cdf_4xx[svc]).sum(axis=1)]
    status = np.where(is_5xx, code_5xx, np.where(is_4xx, code_4xx, tables.route_ok[route]))

    latency = np.exp(tables.latency_mu[svc] + tables.latency_sigma[svc] * rng.standard_normal(n))
    latency = np.where(is_4xx, latency * 0.4, latency)
    if incident is not None:
        latency = np.where(in_incident, latency * incident.latency_factor, latency)
    latency_tenths = np.maximum(np.rint(latency * 10.0).astype(np.int64), 1)

    level = np.where(
        status >= 500, 3, np.where(status >= 400, 2, np.where(rng.random(n) < _DEBUG_SHARE, 0, 1))
    )

    body = np.rint(tables.route_body[route] * np.exp(0.35 * rng.standard_normal(n)))
    body = np.where(status == 204, 0, body)
    body = np.where(is_4xx, 90 + rng.integers(0, 120, n), body)
    body = np.where(is_5xx, 150 + rng.integers(0, 450, n), body).astype(np.int64)
    referer = np.searchsorted(tables.referer_cdf, rng.random(n), side="right")

    return _Events(t, svc, route, host, user, status, latency_tenths, level, body, referer)


def _shift_out_of_order(
    rng: np.random.Generator, t: np.ndarray, fraction: float, start_ms: int
) -> np.ndarray:
    # Always draw, so the noise stream does not depend on the fraction being zero.
    picked = np.flatnonzero(rng.random(t.size) < fraction)
    if picked.size == 0:
        return t
    t = t.copy()
    # Late lines carry a timestamp 2-90 s older than their neighbours, like a flushed buffer.
    t[picked] = np.maximum(t[picked] - rng.integers(2_000, 90_000, picked.size), start_ms)
    return t


# Arrow arrays are built from raw buffers: `pa.array()` imports pandas on first use, which
# costs about two seconds in a fresh process.
def _strings(texts: list[str] | tuple[str, ...]) -> pa.Array:
    encoded = [text.encode() for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)


def _ints(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), values.size, [None, pa.py_buffer(values)])


def _take(table: pa.Array, indices: np.ndarray) -> pa.Array:
    return table.take(_ints(indices))


@lru_cache(maxsize=1)
def _no_separator() -> pa.Scalar:
    return _strings([""])[0]


def _join(*columns: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*columns, _no_separator())


def _minute_prefixes(t: np.ndarray, fmt: Callable[[datetime], str]) -> pa.Array:
    unique, inverse = np.unique(t // _MS_PER_MINUTE, return_inverse=True)
    return _take(_strings([fmt(_EPOCH + timedelta(minutes=m)) for m in unique.tolist()]), inverse)


def _app_prefix(d: datetime) -> str:
    return f'{{"ts": "{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:'


def _nginx_prefix(d: datetime) -> str:
    return f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year:04d}:{d.hour:02d}:{d.minute:02d}:"


@lru_cache(maxsize=1)
def _app_seconds() -> pa.Array:
    return _strings(
        [f'{ms // 1000:02d}.{ms % 1000:03d}Z", "level": "' for ms in range(_MS_PER_MINUTE)]
    )


def _app_lines(tables: _Tables, code: int, t: np.ndarray, ev: _Events, sel: np.ndarray) -> pa.Array:
    tenths = ev.latency_tenths[sel]
    route = ev.route[sel]
    return _join(
        _minute_prefixes(t, _app_prefix),
        _take(_app_seconds(), t % _MS_PER_MINUTE),
        _take(tables.app_level[code], ev.level[sel]),
        _take(tables.app_host, ev.host[sel]),
        _take(tables.app_route_msg, route),
        _take(tables.app_status, ev.status[sel]),
        pc.cast(_ints(tenths // 10), pa.string()),
        _take(tables.app_decimal, tenths % 10),
        _take(tables.app_user, ev.user[sel]),
        _take(tables.app_route_tail, route),
    )


def _nginx_lines(tables: _Tables, t: np.ndarray, ev: _Events) -> pa.Array:
    return _join(
        _take(tables.nginx_client, ev.user),
        _minute_prefixes(t, _nginx_prefix),
        _take(tables.nginx_second, t % _MS_PER_MINUTE // 1000),
        _take(tables.nginx_request, ev.route),
        _take(tables.nginx_status, ev.status),
        pc.cast(_ints(ev.body_bytes), pa.string()),
        _take(tables.nginx_referer, ev.referer),
        _take(tables.nginx_user_agent, tables.user_agent_of_user[ev.user]),
    )


def _corrupt_app(line: bytes, kind: str, u: float) -> bytes:
    body = line[:-1]
    if kind == "truncated_json":
        # Any proper prefix of a JSON object is invalid JSON.
        return body[: 10 + int(u * (len(body) - 12))] + b"\n"
    if kind == "garbage":
        return _APP_GARBAGE[int(u * len(_APP_GARBAGE))] + b"\n"
    if kind == "invalid_utf8":
        return line.replace(b'", "status": ', b'\xff\xfe", "status": ', 1)
    after_ts = line.index(b'"level"')
    if kind == "unparseable_ts":
        return (
            b'{"ts": "' + _BAD_TIMESTAMPS[int(u * len(_BAD_TIMESTAMPS))] + b'", ' + line[after_ts:]
        )
    if kind == "missing_ts":
        return b"{" + line[after_ts:]
    if kind == "blank":
        return b"\n"
    raise ValueError(kind)


def _corrupt_nginx(line: bytes, kind: str, u: float) -> bytes:
    if kind == "garbage":
        if u < 0.5:
            # Cut inside the request, so the quoted request and status never close.
            end = line.index(b" HTTP/1.1")
            return line[: 12 + int(u * 2 * (end - 12))] + b"\n"
        return _NGINX_GARBAGE[int((u - 0.5) * 2 * len(_NGINX_GARBAGE))] + b"\n"
    if kind == "invalid_utf8":
        return line.replace(b" HTTP/1.1", b"?q=\xff\xfe HTTP/1.1", 1)
    raise ValueError(kind)


class _FileWriter:
    """Streams blocks of lines to `<path>.part`, tracking what the manifest reports."""

    def __init__(
        self, root: Path, path: str, source: str, service: str | None, kinds: tuple[str, ...]
    ) -> None:
        self.path = path
        self.source = source
        self.service = service
        self.kinds = kinds
        self.final = root / path
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.part = self.final.with_name(self.final.name + ".part")
        self.fh: BinaryIO = open(self.part, "wb", buffering=1 << 20)  # noqa: SIM115
        self.total = 0
        self.size = 0
        self.malformed = np.zeros(len(kinds), dtype=np.int64)
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def write(
        self,
        lines: pa.Array,
        t: np.ndarray,
        rng: np.random.Generator,
        fraction: float,
        corrupt: Callable[[bytes, str, float], bytes],
    ) -> None:
        n = len(lines)
        bad = np.flatnonzero(rng.random(n) < fraction)
        kinds = rng.integers(0, len(self.kinds), bad.size)
        draws = rng.random(bad.size)
        buffers = lines.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int32)[lines.offset : lines.offset + n + 1]
        data = memoryview(buffers[2])  # type: ignore[arg-type]
        pos = int(offsets[0])
        for p, kind, u in zip(bad.tolist(), kinds.tolist(), draws.tolist(), strict=True):
            begin, end = int(offsets[p]), int(offsets[p + 1])
            self.size += self.fh.write(data[pos:begin])
            self.size += self.fh.write(corrupt(bytes(data[begin:end]), self.kinds[kind], u))
            pos = end
        self.size += self.fh.write(data[pos : int(offsets[-1])])

        self.total += n
        self.malformed += np.bincount(kinds, minlength=len(self.kinds))
        valid_t = np.delete(t, bad) if bad.size else t
        if valid_t.size:
            lo, hi = int(valid_t.min()), int(valid_t.max())
            self.first_ms = lo if self.first_ms is None else min(self.first_ms, lo)
            self.last_ms = hi if self.last_ms is None else max(self.last_ms, hi)

    def finish(self) -> FileManifest:
        self.fh.close()
        self.part.replace(self.final)
        malformed = dict(zip(self.kinds, self.malformed.tolist(), strict=True))
        return FileManifest(
            path=self.path,
            source=self.source,
            service=self.service,
            total_lines=self.total,
            valid_lines=self.total - sum(malformed.values()),
            malformed=malformed,
            first_event_at=None if self.first_ms is None else _from_ms(self.first_ms),
            last_event_at=None if self.last_ms is None else _from_ms(self.last_ms),
            size_bytes=self.size,
        )

    def abort(self) -> None:
        self.fh.close()
        self.part.unlink(missing_ok=True)
