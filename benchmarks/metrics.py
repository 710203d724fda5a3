"""Time to materialize metrics (and their anomaly scores): one hour, and a 7-day backfill.

1. **One hour**: `--hour-events` lines (default 1,000,000, half JSON app lines, half nginx
   lines, as `generate_sample_logs` writes them; 0.5% malformed) all inside one hour, ingested
   with the real ingestion path; then `run_metrics_range(defs, instance, hour, hour)` (the
   `metrics_job` as one in-process Dagster run: every metric of configs/metrics.yaml and its
   anomaly asset) is timed `--runs` times (the first on empty metric tables, later ones replace
   the partition). Then each metric's SQL alone (`compute_metric`) and each anomaly scoring
   alone (`score_metric_range`) are timed on the same warehouse, which shows what the Dagster
   run adds.
2. **7-day backfill**: `--events` events (default 10,000,000) over 168 hours
   (`--backfill-hours`), ingested, then the 168 partitions as one single run through
   `run_metrics_range(first, last)`.

Temporary project (a copy of configs/, a temporary data dir) and a temporary Dagster instance.

    .venv/bin/python benchmarks/metrics.py                           # 1M events/hour, 10M/7 days
    .venv/bin/python benchmarks/metrics.py --events 2M --skip-hour
    .venv/bin/python benchmarks/metrics.py --smoke                   # tiny, a few seconds
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

HOUR = datetime(2026, 11, 20, 12)  # naive UTC, like partition hours
BACKFILL_FIRST = datetime(2026, 11, 13)
BACKFILL_HOURS = 168


def prepare(root: Path, start: datetime, hours: int, events: int, seed: int = 7):
    """A project under `root` whose warehouse holds about `events` events over `hours` hours."""
    from loglens_pipeline.warehouse.connection import connect

    project = _bench.write_project(root)
    started = time.perf_counter()
    manifest = _bench.generate_events(project.logs_dir, start, hours, events, seed=seed)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    report = _bench.ingest_all(project)
    ingested = time.perf_counter() - started
    end = start + timedelta(hours=hours)
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        by_source = conn.execute(
            """SELECT source, count(*) FROM raw.events
               WHERE event_time >= ? AND event_time < ? GROUP BY source ORDER BY source""",
            [start, end],
        ).fetchall()
    inside = sum(n for _, n in by_source)
    print(
        f"setup: generated {manifest.total_lines:,} lines in {generated:.1f} s, ingested "
        f"{report.total('events'):,} events ({report.lines_per_second:,.0f} lines/s) in "
        f"{ingested:.1f} s; events in the {hours} hour(s): {inside:,} "
        f"({', '.join(f'{s} {n:,}' for s, n in by_source)})",
        flush=True,
    )
    # Files are not needed any more: free the disk.
    shutil.rmtree(project.logs_dir, ignore_errors=True)
    return project, inside


def timed_run(defs, instance, first: datetime, last: datetime) -> float:
    from loglens_pipeline.runs import run_metrics_range

    started = time.perf_counter()
    result = run_metrics_range(defs, instance, first, last, trigger="benchmark")
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"metrics run {result.run_id} failed")
    return seconds


def per_metric_times(project, start: datetime, end: datetime, repeats: int) -> list[tuple]:
    """(name, aggregation, rows, compute s, score s) of each metric, medians of `repeats`."""
    from loglens_pipeline.anomaly.frames import score_metric_range
    from loglens_pipeline.metrics.compute import compute_metric
    from loglens_pipeline.warehouse.connection import connect

    rows = []
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        for metric in project.metrics:
            compute, score = [], []
            frame_rows = 0
            for _ in range(repeats):
                started = time.perf_counter()
                frame_rows = len(compute_metric(conn, metric, start, end).frame)
                compute.append(time.perf_counter() - started)
                started = time.perf_counter()
                score_metric_range(conn, metric, start, end)
                score.append(time.perf_counter() - started)
            rows.append(
                (
                    metric.spec.name,
                    metric.spec.aggregation,
                    frame_rows,
                    statistics.median(compute),
                    statistics.median(score),
                )
            )
    return rows


def one_hour(root: Path, events: int, runs: int, repeats: int) -> None:
    from loglens_pipeline.definitions import build_definitions
    from loglens_pipeline.instance import open_instance

    print(f"\n-- one hour ({HOUR:%Y-%m-%d %H}:00 UTC) of all shipped metrics")
    project, _ = prepare(root, HOUR, 1, events)
    instance = open_instance(root / "dagster_home")
    started = time.perf_counter()
    defs = build_definitions(project)
    defs.resolve_job_def("metrics_job")
    print(
        f"{len(project.metrics)} metrics + {len(project.metrics)} anomaly assets; definitions "
        f"built in {time.perf_counter() - started:.1f} s (not timed below)"
    )
    seconds = [timed_run(defs, instance, HOUR, HOUR) for _ in range(runs)]
    print(f"hour run, first (empty metric tables): {seconds[0]:.2f} s")
    print(
        f"hour run seconds min / median / max ({runs} runs): {_bench.min_med_max(seconds, '.2f')}"
    )

    table = per_metric_times(project, HOUR, HOUR + timedelta(hours=1), repeats)
    print(f"\nper metric, median of {repeats} (compute_metric / score_metric_range directly):")
    print(f"{'metric':26} {'aggregation':12} {'rows':>6} {'compute ms':>10} {'score ms':>9}")
    for name, aggregation, rows, compute, score in table:
        print(f"{name:26} {aggregation:12} {rows:>6} {compute * 1e3:>10.1f} {score * 1e3:>9.1f}")
    total_compute = sum(r[3] for r in table)
    total_score = sum(r[4] for r in table)
    print(
        f"sum of per-metric compute: {total_compute:.2f} s, of scoring: {total_score:.2f} s; "
        f"the median run adds {_bench.median(seconds) - total_compute - total_score:.2f} s "
        "(Dagster steps, IO manager writes, metadata)"
    )
    instance.dispose()


def backfill(root: Path, events: int, hours: int) -> None:
    from loglens_pipeline.definitions import build_definitions
    from loglens_pipeline.instance import open_instance

    last = BACKFILL_FIRST + timedelta(hours=hours - 1)
    print(
        f"\n-- {hours / 24:g}-day backfill ({hours} partitions, {BACKFILL_FIRST:%Y-%m-%d %H}:00 .. "
        f"{last:%Y-%m-%d %H}:00 UTC) as one run"
    )
    project, inside = prepare(root, BACKFILL_FIRST, hours, events)
    instance = open_instance(root / "dagster_home")
    defs = build_definitions(project)
    defs.resolve_job_def("metrics_job")
    seconds = timed_run(defs, instance, BACKFILL_FIRST, last)
    print(
        f"backfill run: {seconds:.2f} s for {hours} partitions x "
        f"{2 * len(project.metrics)} assets over {inside:,} events "
        f"({seconds / hours * 1e3:.0f} ms per hour)"
    )
    instance.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour-events", type=_bench.count, default=1_000_000)
    parser.add_argument("--events", type=_bench.count, default=10_000_000, help="7-day backfill")
    parser.add_argument(
        "--backfill-hours", type=int, default=BACKFILL_HOURS, help="partitions of the backfill"
    )
    parser.add_argument("--runs", type=int, default=3, help="hour runs")
    parser.add_argument("--repeats", type=int, default=3, help="per-metric timings")
    parser.add_argument("--skip-hour", action="store_true")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    args = parser.parse_args()
    if args.smoke:
        args.hour_events, args.events, args.runs, args.repeats = 10_000, 10_000, 1, 1
        args.backfill_hours = 2

    _bench.header("metric materialization: one hour, and a 7-day single-run backfill")
    root = Path(tempfile.mkdtemp(prefix="loglens-bench-metrics-"))
    try:
        if not args.skip_hour:
            one_hour(root / "hour", args.hour_events, args.runs, args.repeats)
        if not args.skip_backfill:
            backfill(root / "backfill", args.events, args.backfill_hours)
        print()
        _bench.footer()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
