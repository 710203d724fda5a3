"""How LogLens scales: ingesting 1, 2, 4 files in one run, and materializing 8, 32, 128 metrics.

1. **Files per run**: `--lines-per-file` seeded lines per file (each file from its own
   `generate_sample_logs` day and seed: the five JSON service logs concatenated, or the nginx
   access log), then 1, 2 and 4 of them ingested by one `ingest_files` call (what one
   `ingest_job` run does) into a fresh warehouse in a fresh spawned child: lines/s, MB/s, peak
   RSS, and the rate relative to one file.
2. **Metrics per run**: `--events` events in one hour, ingested once; then for each count in
   `--metric-counts` a project whose metrics.yaml holds that many clones of the shipped metrics
   (renamed `<name>_<i>`, each with its own extra filter `latency_ms >= k` / `body_bytes_sent
   >= k`), and the time of `run_metrics_range` for that hour (metric + anomaly asset each).

    .venv/bin/python benchmarks/scaling.py
    .venv/bin/python benchmarks/scaling.py --lines-per-file 500k --events 1M
    .venv/bin/python benchmarks/scaling.py --smoke
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

START = datetime(2026, 10, 1, tzinfo=UTC)
HOUR = datetime(2026, 11, 20, 12)  # naive UTC
FILTER_FIELD = {"app": "latency_ms", "nginx": "body_bytes_sent"}
FORMATS = {"json": ("app", "jsonl"), "text": ("nginx", "log")}


# --- files per run ------------------------------------------------------------------------------


def generate_parts(folder: Path, parts: int, lines_per_file: int) -> None:
    """`folder/part-<k>.jsonl` and `folder/part-<k>.log`, k < parts, all different content."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(parts):
        block = folder / f"block-{k}"
        manifest = _bench.sample_logs(
            block, START + timedelta(days=k), 24, max(1, lines_per_file // 24), 100 + k
        )
        with open(folder / f"part-{k}.jsonl", "wb") as out:
            _bench.append_app_files(manifest, block, out)
        os.replace(block / "nginx" / "access.log", folder / f"part-{k}.log")
        shutil.rmtree(block)


def files_child(root: str, source: str) -> tuple[int, int, float, int]:
    """In a fresh process: ingest the source's files -> lines, bytes, seconds, peak RSS."""
    import pandas  # noqa: F401  # imported by every Dagster run worker; not part of the timing

    project = _bench.load_project(Path(root))
    started = time.perf_counter()
    report = _bench.ingest_all(project, sources=[source])
    seconds = time.perf_counter() - started
    return report.total("lines"), report.total("bytes"), seconds, _bench.peak_rss_bytes()


def files_per_run(root: Path, counts: list[int], lines_per_file: int, formats: list[str]) -> None:
    print(f"\n-- files per run: {lines_per_file:,} lines per file, one ingest_files call")
    parts = root / "parts"
    started = time.perf_counter()
    generate_parts(parts, max(counts), lines_per_file)
    print(f"generated {max(counts)} files per format in {time.perf_counter() - started:.1f} s")
    print(
        f"{'format':6} {'files':>5} {'lines':>10} {'MB':>8} {'seconds':>8} {'lines/s':>10} "
        f"{'MB/s':>7} {'vs 1 file':>9} {'peak RSS MiB':>12}"
    )
    for fmt in formats:
        source, suffix = FORMATS[fmt]
        single = None
        for n in counts:
            case = root / f"files-{fmt}-{n}"
            shutil.rmtree(case, ignore_errors=True)
            project = _bench.write_project(case)
            folder = project.logs_dir / source
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                os.link(parts / f"part-{k}.{suffix}", folder / f"part-{k}.{suffix}")
            lines, size, seconds, peak = _bench.in_child(files_child, str(case), source)
            shutil.rmtree(case, ignore_errors=True)
            rate = lines / seconds
            single = single or rate
            print(
                f"{fmt:6} {n:>5} {lines:>10,} {size / 1e6:>8.1f} {seconds:>8.2f} {rate:>10,.0f} "
                f"{size / seconds / 1e6:>7.1f} {rate / single:>9.2f} {peak / _bench.MIB:>12.0f}",
                flush=True,
            )
    shutil.rmtree(parts, ignore_errors=True)


# --- metrics per run ----------------------------------------------------------------------------


def cloned_metrics(count: int) -> list[dict]:
    """`count` metrics cloned from the shipped ones, each with its own name and extra filter."""
    shipped = _bench.shipped_metrics()
    metrics = []
    for i in range(count):
        base = copy.deepcopy(shipped[i % len(shipped)])
        sources = base["source"] if isinstance(base["source"], list) else [base["source"]]
        extra = f"{FILTER_FIELD[sources[0]]} >= {i // len(shipped)}"
        base["name"] = f"{base['name']}_{i:03d}"
        base["filter"] = f"({base['filter']}) and {extra}" if base.get("filter") else extra
        metrics.append(base)
    return metrics


def metrics_per_run(root: Path, counts: list[int], events: int) -> None:
    from loglens_pipeline.definitions import build_definitions
    from loglens_pipeline.instance import open_instance
    from loglens_pipeline.runs import run_metrics_range

    print(f"\n-- metrics per run: one hour ({HOUR:%Y-%m-%d %H}:00 UTC), {events:,} events")
    base = _bench.write_project(root / "metrics-base")
    _bench.generate_events(base.logs_dir, HOUR, 1, events)
    started = time.perf_counter()
    report = _bench.ingest_all(base)
    print(
        f"setup: ingested {report.total('events'):,} events in "
        f"{time.perf_counter() - started:.1f} s (not timed below)"
    )
    shutil.rmtree(base.logs_dir, ignore_errors=True)
    print(f"{'metrics':>7} {'assets':>6} {'run seconds':>11} {'ms per metric':>13}")
    for n in counts:
        case = root / f"metrics-{n}"
        shutil.rmtree(case, ignore_errors=True)
        project = _bench.write_project(case, metrics=cloned_metrics(n))
        project.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base.warehouse_path, project.warehouse_path)
        instance = open_instance(case / "dagster_home")
        defs = build_definitions(project)
        defs.resolve_job_def("metrics_job")
        started = time.perf_counter()
        result = run_metrics_range(defs, instance, HOUR, HOUR, trigger="benchmark")
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"metrics run {result.run_id} failed")
        instance.dispose()
        shutil.rmtree(case, ignore_errors=True)
        print(f"{n:>7} {2 * n:>6} {seconds:>11.2f} {seconds / n * 1e3:>13.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file-counts", default="1,2,4")
    parser.add_argument("--lines-per-file", type=_bench.count, default=250_000)
    parser.add_argument("--formats", default="json,text")
    parser.add_argument("--metric-counts", default="8,32,128")
    parser.add_argument("--events", type=_bench.count, default=1_000_000, help="in the hour")
    parser.add_argument("--skip-files", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 and 2 metrics")
    args = parser.parse_args()
    if args.smoke:
        args.lines_per_file, args.events, args.metric_counts = 5_000, 5_000, "1,2"
        args.file_counts, args.formats = "1,2", "json"

    _bench.header("scaling: files per ingestion run, metrics per materialization run")
    root = Path(tempfile.mkdtemp(prefix="loglens-bench-scaling-"))
    try:
        if not args.skip_files:
            files_per_run(
                root,
                [int(n) for n in args.file_counts.split(",")],
                args.lines_per_file,
                args.formats.split(","),
            )
        if not args.skip_metrics:
            metrics_per_run(root, [int(n) for n in args.metric_counts.split(",")], args.events)
        print()
        _bench.footer()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
