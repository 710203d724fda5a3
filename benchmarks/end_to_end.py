"""Latency from dropping a log file to its hour's anomaly scores being queryable by BI tools.

Starts the real `loglens dev` (Dagster webserver + daemon + code server) on a free port against a
temporary project (a copy of configs/, an empty data dir) and a temporary DAGSTER_HOME holding
the shipped dagster.yaml. Then, `--drops` times, one at a time: writes a JSON-lines file of
`--lines-per-drop` events inside the last closed hour under a name the glob ignores and renames
it into `logs/app/` (the "drop"); every event of drop `i` has the service `bench-drop-<i>`, a
group no earlier drop has. The latency is the time from the rename to the first moment
`anomalies.requests_per_service` of the **reader copy** (`warehouse/reader.duckdb`, opened
read-only and closed after each poll, every `--poll` s) has that hour's row for that group:
`log_file_sensor` -> `ingest_job` run -> `raw/event_hours` -> automation sensor -> metric and
anomaly runs -> `warehouse/reader_copy` run. Before the next drop the instance is left idle (no
queued or running run), and no drop starts in the last 150 s of an hour: its hour would stop
being the last closed one while its chain runs, and automation (rightly) no longer recomputes
an hour past its allowed lateness. Prints each drop, the median and the worst. Everything started is
stopped at the end (the whole process group), also on SIGINT / SIGTERM, which end the drops early
and print the summary of those measured.

    .venv/bin/python benchmarks/end_to_end.py                # 10 drops
    .venv/bin/python benchmarks/end_to_end.py --smoke        # 1 drop of 50 lines
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

MARKER_METRIC = "requests_per_service"  # count by service: every new service is a new group
ACTIVE_STATUSES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
RUNS_QUERY = """
query BenchRuns {
  runsOrError(limit: 30) {
    ... on Runs { results { runId jobName status creationTime startTime endTime
                            tags { key value } } }
  }
}
"""


def drop_lines(drop: int, hour: datetime, count: int) -> str:
    """`count` valid JSON lines of service `bench-drop-<drop>`, spread over `hour`."""
    step = 3600 / count
    lines = []
    for i in range(count):
        ts = hour + timedelta(seconds=i * step)
        lines.append(
            json.dumps(
                {
                    "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "level": "ERROR" if i % 50 == 0 else "INFO",
                    "service": f"bench-drop-{drop:02d}",
                    "host": f"bench-{i % 3}",
                    "msg": f"GET /api/bench {i}",
                    "status": 500 if i % 50 == 0 else 200,
                    "latency_ms": 10.0 + i % 90,
                    "user_id": f"u-{i % 97:05d}",
                    "http": {"method": "GET", "path": "/api/bench"},
                }
            )
        )
    return "\n".join(lines) + "\n"


def drop_file(folder: Path, name: str, text: str) -> float:
    """Write under a name the glob ignores, then rename into place; the rename's wall time."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    partial.write_text(text)
    os.replace(partial, folder / name)
    return time.time()


def visible(reader: Path, hour: datetime, service: str) -> bool:
    """Whether the reader copy has `hour`'s anomaly rows for `service` (opened read-only)."""
    import duckdb

    if not reader.exists():
        return False
    try:
        conn = duckdb.connect(str(reader), read_only=True)
    except duckdb.Error:
        return False  # being replaced, or not a database yet
    try:
        rows = conn.execute(
            f"SELECT count(*) FROM anomalies.{MARKER_METRIC} WHERE hour = ? AND service = ?",
            [hour, service],
        ).fetchall()
        return rows[0][0] > 0
    except duckdb.Error:
        return False  # the table does not exist yet
    finally:
        conn.close()


def runs(dagster) -> list[dict]:
    return dagster.graphql(RUNS_QUERY)["runsOrError"].get("results") or []


def wait_idle(dagster, timeout: float) -> float:
    """Wait until no run is queued or running (the previous drop's follow-ups are done)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not any(r["status"] in ACTIVE_STATUSES for r in runs(dagster)):
            return time.monotonic() - started
        time.sleep(1.0)
    return time.monotonic() - started


def describe_runs(dagster, since: float) -> str:
    """The runs created since `since` (epoch s): what each did and when, relative to `since`."""
    parts = []
    for run in sorted(runs(dagster), key=lambda r: r["creationTime"]):
        if run["creationTime"] < since - 1:
            continue
        tags = {t["key"]: t["value"] for t in run["tags"]}
        what = run["jobName"]
        if what.startswith("__ASSET_JOB"):
            what = "automation"
        if "dagster/sensor_name" in tags:
            what += f"({tags['dagster/sensor_name']})"
        end = f"{run['endTime'] - since:.1f}" if run.get("endTime") else "-"
        parts.append(f"{what} {run['creationTime'] - since:.1f}->{end} {run['status'].lower()}")
    return "; ".join(parts)


HOUR_MARGIN_SECONDS = 150  # no drop this close to the next hour (its chain would cross it)


def measure_drop(dagster, project, folder: Path, suffix: str, drop: int, args) -> float | None:
    """Drop one file for the last closed hour; seconds until its anomaly rows are readable."""
    now = datetime.now(UTC).replace(tzinfo=None)
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if (next_hour - now).total_seconds() < HOUR_MARGIN_SECONDS:
        # Once the next hour starts, the dropped hour is no longer the last closed one and its
        # allowed lateness is over: automation would not recompute its metrics (by design).
        wait = (next_hour - now).total_seconds() + 5
        print(f"     waiting {wait:.0f} s for {next_hour:%H:%M} UTC: a drop now would cross it")
        time.sleep(wait)
        now = datetime.now(UTC).replace(tzinfo=None)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    service = f"bench-drop-{drop:02d}"
    text = drop_lines(drop, hour, args.lines_per_drop)
    dropped = drop_file(folder, f"bench-drop-{drop:02d}{suffix}", text)
    deadline = time.monotonic() + args.timeout
    latency = None
    while time.monotonic() < deadline:
        if visible(project.reader_path, hour, service):
            latency = time.time() - dropped
            break
        time.sleep(args.poll)
    detail = describe_runs(dagster, dropped)
    shown = f"{latency:9.1f}" if latency is not None else f"{'timeout':>9}"
    print(f"{drop:>4} {hour:%Y-%m-%d %H:%M} {args.lines_per_drop:>6} {shown}  {detail}")
    sys.stdout.flush()
    if latency is None:
        print(dagster.describe(f"drop {drop} not visible after {args.timeout:.0f} s"))
    return latency


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    # SIGTERM (and SIGINT, which a background shell job inherits as ignored) end the drops
    # cleanly: the summary is printed and `loglens dev` is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--lines-per-drop", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=900.0, help="per drop, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--smoke", action="store_true", help="one drop of 50 lines")
    args = parser.parse_args()
    if args.smoke:
        args.drops, args.lines_per_drop = 1, 50

    from loglens_pipeline_tests.e2e.processes import start_loglens_dev

    _bench.header("end to end: file drop -> anomaly rows in the reader copy (loglens dev)")
    root = Path(tempfile.mkdtemp(prefix="loglens-bench-e2e-"))
    dagster = None
    latencies: list[float] = []
    try:
        project = _bench.write_project(root)
        log_path = root / "dagster-dev.log"
        started = time.monotonic()
        dagster = start_loglens_dev(
            dagster_home=root / "dagster_home",
            config_dir=root / "configs",
            data_dir=root / "data",
            log_path=log_path,
        )
        print(
            f"loglens dev ready on port {dagster.port} in {time.monotonic() - started:.1f} s "
            f"(sensor interval {project.config.ingest.sensor_interval_seconds} s)"
        )
        idle = wait_idle(dagster, 120)
        print(f"instance idle after {idle:.1f} s more")
        source = project.config.source("app")
        folder = project.logs_dir / Path(source.glob).parent
        suffix = Path(source.glob).name.lstrip("*")
        print(f"{'drop':>4} {'hour (UTC)':>16} {'lines':>6} {'latency s':>9}  runs since the drop")
        try:
            for drop in range(1, args.drops + 1):
                latency = measure_drop(dagster, project, folder, suffix, drop, args)
                if latency is None:
                    break
                latencies.append(latency)
                wait_idle(dagster, args.timeout)
        except KeyboardInterrupt:
            print(f"interrupted after {len(latencies)} drops")
        if latencies:
            print()
            print(
                f"latency over {len(latencies)} drops: median {_bench.median(latencies):.1f} s, "
                f"worst {max(latencies):.1f} s, best {min(latencies):.1f} s"
            )
    finally:
        if dagster is not None:
            leftovers = dagster.stop()
            print(
                f"stopped loglens dev (process group {dagster.pgid}) in "
                f"{dagster.stop_seconds:.1f} s; processes left: {len(leftovers)}"
            )
        _bench.footer()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if len(latencies) < args.drops:
        sys.exit(1)


if __name__ == "__main__":
    main()
