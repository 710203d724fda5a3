"""Tests for the sample log generator, checked against an independent re-read of the files."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from loglens_pipeline.samples.generator import (
    APP_MALFORMED_KINDS,
    NGINX_MALFORMED_KINDS,
    SERVICES,
    Incident,
    SampleManifest,
    default_incident,
    default_start,
    generate_sample_logs,
)

START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
APP_KEYS = ["ts", "level", "service", "host", "msg", "status", "latency_ms", "user_id", "http"]
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NGINX_RE = re.compile(
    r"^(?P<ip>\d+\.\d+\.\d+\.\d+) - - "
    r"\[(?P<day>\d{2})/(?P<mon>[A-Z][a-z]{2})/(?P<year>\d{4}):(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r' \+0000\] "(?P<method>[A-Z]+) (?P<path>/\S*) HTTP/1\.1" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$'
)
MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


@dataclass
class Reread:
    """One file as an independent reader sees it."""

    raw: bytes
    lines: list[bytes]
    kinds: Counter[str]
    events: list[tuple[datetime, dict[str, Any]]]


def classify_app(line: bytes) -> tuple[str | None, dict[str, Any] | None]:
    if not line.strip():
        return "blank", None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return ("truncated_json" if text.startswith("{") else "garbage"), None
    if not isinstance(obj, dict):
        return "garbage", None
    if "ts" not in obj:
        return "missing_ts", None
    ts = obj["ts"]
    if not isinstance(ts, str) or not TS_RE.match(ts):
        return "unparseable_ts", None
    try:
        obj["ts"] = datetime.fromisoformat(ts)
    except ValueError:
        return "unparseable_ts", None
    return None, obj


def classify_nginx(line: bytes) -> tuple[str | None, dict[str, Any] | None]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    match = NGINX_RE.match(text)
    if match is None:
        return "garbage", None
    fields: dict[str, Any] = match.groupdict()
    fields["ts"] = datetime(
        int(fields["year"]),
        MONTHS[fields["mon"]],
        int(fields["day"]),
        int(fields["h"]),
        int(fields["m"]),
        int(fields["s"]),
        tzinfo=UTC,
    )
    fields["status"] = int(fields["status"])
    return None, fields


def reread(path: Path, source: str) -> Reread:
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b"", f"{path} does not end with a newline"
    lines = lines[:-1]
    classify = classify_app if source == "app" else classify_nginx
    kinds: Counter[str] = Counter()
    events = []
    for line in lines:
        kind, obj = classify(line)
        if kind is not None:
            kinds[kind] += 1
            continue
        assert obj is not None
        events.append((obj["ts"], obj))
    return Reread(raw, lines, kinds, events)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleManifest]:
    out = tmp_path_factory.mktemp("sample")
    manifest = generate_sample_logs(
        out, start=START, hours=24, lines_per_hour=1500, seed=11, malformed_fraction=0.01
    )
    return out, manifest


@pytest.fixture(scope="module")
def reread_files(sample: tuple[Path, SampleManifest]) -> dict[str, Reread]:
    out, manifest = sample
    return {f.path: reread(out / f.path, f.source) for f in manifest.files}


def test_writes_one_file_per_service_and_nginx(sample: tuple[Path, SampleManifest]) -> None:
    out, manifest = sample
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted([*(f"app/{s}.jsonl" for s in SERVICES), "nginx/access.log"])
    assert written == expected
    assert sorted(f.path for f in manifest.files) == expected
    for entry in manifest.files:
        data = (out / entry.path).read_bytes()
        assert data.endswith(b"\n")
        assert entry.size_bytes == len(data)
        assert entry.source == ("nginx" if entry.path.startswith("nginx/") else "app")


def test_manifest_matches_reread(
    sample: tuple[Path, SampleManifest], reread_files: dict[str, Reread]
) -> None:
    _, manifest = sample
    for entry in manifest.files:
        seen = reread_files[entry.path]
        kinds = APP_MALFORMED_KINDS if entry.source == "app" else NGINX_MALFORMED_KINDS
        assert entry.total_lines == len(seen.lines)
        assert entry.malformed == {k: seen.kinds[k] for k in kinds}
        assert set(seen.kinds) <= set(kinds)
        assert entry.valid_lines == len(seen.events)
        assert entry.malformed_lines == seen.kinds.total()
        times = [ts for ts, _ in seen.events]
        assert entry.first_event_at == min(times)
        assert entry.last_event_at == max(times)
    assert manifest.total_lines == sum(len(r.lines) for r in reread_files.values())
    assert manifest.malformed_lines == sum(r.kinds.total() for r in reread_files.values())
    assert manifest.valid_lines == manifest.total_lines - manifest.malformed_lines


def test_volume_and_nginx_mirror_the_app_traffic(sample: tuple[Path, SampleManifest]) -> None:
    _, manifest = sample
    app_total = sum(f.total_lines for f in manifest.files if f.source == "app")
    assert app_total == pytest.approx(24 * 1500, rel=0.05)
    assert manifest.file("nginx/access.log").total_lines == app_total


def test_malformed_share_is_near_the_requested_fraction(
    reread_files: dict[str, Reread],
) -> None:
    for source in ("app", "nginx"):
        files = [r for path, r in reread_files.items() if path.startswith(source)]
        malformed = sum(r.kinds.total() for r in files)
        total = sum(len(r.lines) for r in files)
        assert malformed / total == pytest.approx(0.01, rel=0.2)
    app_kinds = sum((r.kinds for p, r in reread_files.items() if p.startswith("app/")), Counter())
    assert set(app_kinds) == set(APP_MALFORMED_KINDS)
    assert set(reread_files["nginx/access.log"].kinds) == set(NGINX_MALFORMED_KINDS)


def test_valid_lines_are_well_formed_and_sorted(reread_files: dict[str, Reread]) -> None:
    for path, seen in reread_files.items():
        times = [ts for ts, _ in seen.events]
        assert times == sorted(times), path
        if path.startswith("nginx/"):
            assert {e["path"].split("/")[2] for _, e in seen.events} == set(SERVICES)
            continue
        service = path.removeprefix("app/").removesuffix(".jsonl")
        for _, event in seen.events:
            assert list(event) == APP_KEYS
            assert event["service"] == service
            assert event["host"].startswith(f"{service}-")
            assert event["http"]["path"].startswith(f"/api/{service}")
            assert (
                event["msg"]
                == f"{event['http']['method']} {event['http']['path']} {event['status']}"
            )
            assert event["latency_ms"] > 0
            assert re.fullmatch(r"u-\d{5}", event["user_id"])
            status, level = event["status"], event["level"]
            expected = (
                {"ERROR"} if status >= 500 else {"WARN"} if status >= 400 else {"INFO", "DEBUG"}
            )
            assert level in expected


def test_user_popularity_is_skewed(reread_files: dict[str, Reread]) -> None:
    users = Counter(
        e["user_id"] for p, r in reread_files.items() if p.startswith("app/") for _, e in r.events
    )
    assert 1000 < len(users) <= 5000
    top = [count for _, count in users.most_common()]
    assert top[0] > 10 * median(top)


def test_diurnal_shape(reread_files: dict[str, Reread]) -> None:
    per_hour = Counter(
        ts.hour for p, r in reread_files.items() if p.startswith("app/") for ts, _ in r.events
    )
    afternoon = sum(per_hour[h] for h in range(13, 18))
    night = sum(per_hour[h] for h in range(1, 6))
    assert afternoon > 2.5 * night
    assert max(per_hour, key=per_hour.__getitem__) in range(12, 19)


def test_incident_in_app_and_nginx(
    sample: tuple[Path, SampleManifest], reread_files: dict[str, Reread]
) -> None:
    _, manifest = sample
    incident = manifest.incident
    assert incident == default_incident(START, 24)
    assert incident is not None
    assert incident.service == "payments"
    assert incident.end - incident.start == timedelta(minutes=45)
    assert incident.start < START + timedelta(hours=12) < incident.end

    def share_5xx(events: list[dict[str, Any]]) -> float:
        return sum(e["status"] >= 500 for e in events) / len(events)

    payments = reread_files["app/payments.jsonl"].events
    inside = [e for ts, e in payments if incident.start <= ts < incident.end]
    outside = [e for ts, e in payments if not incident.start <= ts < incident.end]
    assert share_5xx(inside) > 0.25
    assert share_5xx(outside) < 0.03
    assert all(e["level"] == "ERROR" for e in inside if e["status"] >= 500)
    lat_in = median(e["latency_ms"] for e in inside)
    lat_out = median(e["latency_ms"] for e in outside)
    assert lat_in > 5 * lat_out
    before = [
        e for ts, e in payments if incident.start - timedelta(minutes=45) <= ts < incident.start
    ]
    after = [e for ts, e in payments if incident.end <= ts < incident.end + timedelta(minutes=45)]
    assert len(inside) > 1.25 * (len(before) + len(after)) / 2
    for service in SERVICES:
        if service != "payments":
            other = reread_files[f"app/{service}.jsonl"].events
            assert share_5xx([e for ts, e in other if incident.start <= ts < incident.end]) < 0.05

    nginx = [
        (ts, e)
        for ts, e in reread_files["nginx/access.log"].events
        if e["path"].startswith("/api/payments")
    ]
    assert share_5xx([e for ts, e in nginx if incident.start <= ts < incident.end]) > 0.25
    assert share_5xx([e for ts, e in nginx if not incident.start <= ts < incident.end]) < 0.03


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"start": START, "hours": 2, "lines_per_hour": 4000}
    first = generate_sample_logs(tmp_path / "a", seed=3, **kwargs)
    second = generate_sample_logs(tmp_path / "b", seed=3, **kwargs)
    generate_sample_logs(tmp_path / "c", seed=4, **kwargs)
    assert first == second
    for entry in first.files:
        assert (tmp_path / "a" / entry.path).read_bytes() == (
            tmp_path / "b" / entry.path
        ).read_bytes()
    assert (tmp_path / "a/app/cart.jsonl").read_bytes() != (
        tmp_path / "c/app/cart.jsonl"
    ).read_bytes()


def test_noise_does_not_change_the_traffic(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"start": START, "hours": 1, "lines_per_hour": 4000, "seed": 5}
    clean = generate_sample_logs(tmp_path / "clean", malformed_fraction=0.0, **kwargs)
    noisy = generate_sample_logs(tmp_path / "noisy", malformed_fraction=0.05, **kwargs)
    assert clean.malformed_lines == 0
    assert noisy.malformed_lines > 0
    assert [f.total_lines for f in clean.files] == [f.total_lines for f in noisy.files]


def test_out_of_order_lines(tmp_path: Path) -> None:
    manifest = generate_sample_logs(
        tmp_path, start=START, hours=2, lines_per_hour=4000, out_of_order_fraction=0.02
    )
    for entry in manifest.files:
        seen = reread(tmp_path / entry.path, entry.source)
        times = [ts for ts, _ in seen.events]
        backwards = sum(b < a for a, b in itertools.pairwise(times))
        assert 0 < backwards < 0.1 * len(times), entry.path
        assert entry.first_event_at == min(times)
        assert entry.last_event_at == max(times)
        assert min(times) >= START


def test_no_incident(tmp_path: Path) -> None:
    manifest = generate_sample_logs(
        tmp_path, start=START, hours=2, lines_per_hour=4000, malformed_fraction=0.0, incident=None
    )
    assert manifest.incident is None
    assert manifest.to_dict()["incident"] is None
    events = reread(tmp_path / "app/payments.jsonl", "app").events
    assert sum(e["status"] >= 500 for _, e in events) / len(events) < 0.03


def test_custom_incident_is_reported(tmp_path: Path) -> None:
    incident = Incident(
        "search", START + timedelta(minutes=10), START + timedelta(minutes=40), error_share=0.9
    )
    manifest = generate_sample_logs(
        tmp_path, start=START, hours=1, lines_per_hour=4000, incident=incident
    )
    assert manifest.incident == incident
    events = reread(tmp_path / "app/search.jsonl", "app").events
    inside = [e for ts, e in events if incident.start <= ts < incident.end]
    assert sum(e["status"] >= 500 for e in inside) / len(inside) > 0.8


def test_manifest_to_dict_is_json(sample: tuple[Path, SampleManifest]) -> None:
    _, manifest = sample
    data = json.loads(json.dumps(manifest.to_dict()))
    assert data["start"] == "2026-11-25T00:00:00.000Z"
    assert data["end"] == "2026-11-26T00:00:00.000Z"
    assert data["incident"]["service"] == "payments"
    assert data["total_lines"] == manifest.total_lines
    nginx = next(f for f in data["files"] if f["path"] == "nginx/access.log")
    assert nginx["source"] == "nginx"
    assert set(nginx["malformed"]) == set(NGINX_MALFORMED_KINDS)


def test_default_start() -> None:
    now = datetime(2026, 11, 25, 13, 25, 7, tzinfo=UTC)
    assert default_start(now) == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert default_start(now, hours=6) == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    berlin = datetime(2026, 11, 25, 14, 25, tzinfo=timezone(timedelta(hours=1)))
    assert default_start(berlin) == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        default_start(datetime(2026, 11, 25, 13, 25))


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_sample_logs(tmp_path, start=datetime(2026, 11, 25))
    with pytest.raises(ValueError):
        generate_sample_logs(tmp_path, start=START, hours=0)
    with pytest.raises(ValueError):
        generate_sample_logs(tmp_path, start=START, malformed_fraction=1.5)
    with pytest.raises(ValueError):
        Incident("billing", START, START + timedelta(minutes=5))
    with pytest.raises(ValueError):
        Incident("payments", START, START)
    assert not any(tmp_path.iterdir())
