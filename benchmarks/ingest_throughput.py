"""Ingest throughput and peak memory of LogLens's real ingestion path (offsets and quarantine included).

Generates seeded sample logs (JSON lines from five services plus the same traffic as an nginx
access log), then ingests each format into a fresh warehouse in a fresh child process, several
times, and prints lines/s, MB/s and the child's peak RSS (min/median/max over runs).

    .venv/bin/python benchmarks/ingest_throughput.py --lines 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

SOURCES = {"json": "app", "text": "nginx"}


def _ingest_child(config_dir: str, data_dir: str, source_name: str, queue) -> None:
    from loglens_pipeline.config import ProjectPaths
    from loglens_pipeline.defs.project import Project
    from loglens_pipeline.ingest.discovery import source_files
    from loglens_pipeline.ingest.identity import stat_file
    from loglens_pipeline.ingest.ingestor import ingest_files
    from loglens_pipeline.warehouse.connection import connect
    from loglens_pipeline.warehouse.schema import ensure_raw_schema

    project = Project.load(ProjectPaths(Path(config_dir), Path(data_dir)))
    source = project.config.source(source_name)
    files = source_files(project.logs_dir, source)
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [(source, stat_file(path, source.name)) for path in files]
        started = time.perf_counter()
        report = ingest_files(conn, work, project.config.ingest, ingested_at=datetime.now())
        seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((report.total("lines"), report.total("bytes"), seconds, peak_kib * 1024))


def measure(config_dir: Path, data_dir: Path, source: str) -> tuple[int, int, float, int]:
    """One ingestion of all of a source's files into a fresh warehouse, in a fresh process."""
    warehouse = data_dir / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_ingest_child, args=(str(config_dir), str(data_dir), source, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines", type=int, default=1_000_000, help="JSON lines (the text log gets as many)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="json,text")
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated data here")
    args = parser.parse_args()

    from loglens_pipeline.config.paths import REPO_ROOT
    from loglens_pipeline.samples.generator import generate_sample_logs

    root = args.workdir or Path(tempfile.mkdtemp(prefix="loglens-bench-"))
    data_dir = root / "data"
    hours = 24
    if not (data_dir / "logs").exists():
        generate_sample_logs(
            data_dir / "logs",
            start=datetime(2026, 11, 20, tzinfo=UTC),
            hours=hours,
            lines_per_hour=max(1, args.lines // hours),
        )
    print(
        f"machine: {platform.machine()}, {mp.cpu_count()} cores, python {platform.python_version()}; "
        f"date {datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        f"{'format':6} {'lines':>10} {'MB':>8} {'lines/s (min/med/max)':>32} {'MB/s med':>9} {'peak RSS MiB':>13}"
    )
    for fmt in args.formats.split(","):
        runs = [measure(REPO_ROOT / "configs", data_dir, SOURCES[fmt]) for _ in range(args.runs)]
        lines, size = runs[0][0], runs[0][1]
        rates = sorted(r[0] / r[2] for r in runs)
        mbs = statistics.median(r[1] / r[2] / 1e6 for r in runs)
        peak = max(r[3] for r in runs) / 2**20
        print(
            f"{fmt:6} {lines:>10,} {size / 1e6:>8.1f} "
            f"{rates[0]:>10,.0f} / {statistics.median(rates):>9,.0f} / {rates[-1]:>9,.0f} "
            f"{mbs:>9.1f} {peak:>13.0f}"
        )
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
