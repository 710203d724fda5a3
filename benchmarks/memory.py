"""Peak memory of ingesting one big JSON-lines file: bounded memory means the same peak at any size.

Generates one JSON-lines file of the largest `--sizes` value by streaming seeded sample logs
(`generate_sample_logs`, one day per block with its own seed, 0.5% malformed lines) block after
block into it, never holding more than one block in memory; smaller sizes are prefixes of it cut
at a line boundary. Each size is then ingested with the real ingestion path (`ingest_files`,
shipped config: 64 MiB chunks, DuckDB memory_limit 256MB) into a fresh warehouse in a fresh
spawned child, and the child's peak RSS is printed with the ratio largest / smallest.

    .venv/bin/python benchmarks/memory.py                      # 1GB and 4GB (binary units)
    .venv/bin/python benchmarks/memory.py --sizes 256MB,1GB
    .venv/bin/python benchmarks/memory.py --smoke              # 4MB and 16MB, a few seconds
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

START = datetime(2026, 6, 1, tzinfo=UTC)
BLOCK_LINES = 1_000_000  # about 235 MB of JSON lines per generated day
BIG_FILE = "big.jsonl"


def generate_big_file(path: Path, size: int, scratch: Path, block_lines: int) -> tuple[int, int]:
    """Append generated app lines to `path` until it holds at least `size` bytes: (bytes, lines)."""
    written = lines = 0
    day = 0
    bytes_per_line = 240.0  # refined after the first block
    with open(path, "wb") as out:
        while written < size:
            wanted = min(block_lines, max(1000, int((size - written) / bytes_per_line) + 1000))
            block = scratch / f"block-{day}"
            manifest = _bench.sample_logs(
                block, START + timedelta(days=day), 24, max(1, wanted // 24), 1000 + day
            )
            _bench.append_app_files(manifest, block, out)
            app = [entry for entry in manifest.files if entry.source == "app"]
            written += sum(entry.size_bytes for entry in app)
            lines += sum(entry.total_lines for entry in app)
            bytes_per_line = written / max(1, lines)
            shutil.rmtree(block)
            day += 1
    return written, lines


def prefix_file(source: Path, target: Path, size: int) -> tuple[int, int]:
    """Copy the first lines of `source` that fit in `size` bytes (at least one line)."""
    written = lines = 0
    with open(source, "rb") as handle, open(target, "wb") as out:
        while written < size:
            block = handle.read(min(1 << 22, size - written))
            if not block:
                break
            last = written + len(block) >= size
            if last:  # cut at the last line boundary (or finish the only line)
                cut = block.rfind(b"\n") + 1
                block = block[:cut] if cut else block + handle.readline()
            out.write(block)
            written += len(block)
            lines += block.count(b"\n")
            if last:
                break
    return written, lines


def ingest_child(root: str) -> tuple[int, int, float, int, int]:
    """In a fresh process: ingest every app file of the project -> lines, events, s, RSS, chunks."""
    import pandas  # noqa: F401  # imported by every Dagster run worker; not part of the figure

    project = _bench.load_project(Path(root))
    started = time.perf_counter()
    report = _bench.ingest_all(project, sources=["app"])
    seconds = time.perf_counter() - started
    return (
        report.total("lines"),
        report.total("events"),
        seconds,
        _bench.peak_rss_bytes(),
        report.total("chunks"),
    )


def import_baseline_child() -> int:
    """Peak RSS of a child that only imports what the ingestion child imports."""
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import loglens_pipeline.ingest.ingestor  # noqa: F401

    return _bench.peak_rss_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1GB,4GB", help="file sizes, binary units (1GB = 2**30 bytes)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated file here")
    parser.add_argument("--smoke", action="store_true", help="4MB and 16MB")
    args = parser.parse_args()
    if args.smoke:
        args.sizes = "4MB,16MB"
    sizes = sorted(_bench.size_bytes(s) for s in args.sizes.split(","))
    labels = {_bench.size_bytes(s): s for s in args.sizes.split(",")}

    _bench.header("peak memory of ingesting one big JSON-lines file")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="loglens-bench-memory-"))
    try:
        scratch = root / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        big = scratch / BIG_FILE
        if big.exists() and big.stat().st_size >= sizes[-1]:
            print(f"reusing {big} ({_bench.human_bytes(big.stat().st_size)})")
        else:
            started = time.perf_counter()
            block_lines = BLOCK_LINES if sizes[-1] > 64 * _bench.MIB else 20_000
            written, lines = generate_big_file(big, sizes[-1], scratch, block_lines)
            print(
                f"generated {big.name}: {_bench.human_bytes(written)}, {lines:,} lines in "
                f"{time.perf_counter() - started:.1f} s"
            )
        baseline = _bench.in_child(import_baseline_child)
        print(
            f"peak RSS of a child that only imports the ingestion modules: {baseline / _bench.MIB:.0f} MiB"
        )
        print()
        print(
            f"{'size':>6} {'file bytes':>14} {'lines':>12} {'chunks':>7} {'seconds':>8} "
            f"{'lines/s':>10} {'peak RSS MiB':>12}"
        )
        peaks = {}
        for size in sizes:
            case = root / f"case-{size}"
            shutil.rmtree(case, ignore_errors=True)
            project = _bench.write_project(case)
            target = project.logs_dir / "app" / "big.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbytes, _nlines = prefix_file(big, target, size)
            lines, _events, seconds, peak, chunks = _bench.in_child(ingest_child, str(case))
            shutil.rmtree(case, ignore_errors=True)
            peaks[size] = peak
            print(
                f"{labels[size]:>6} {nbytes:>14,} {lines:>12,} {chunks:>7} {seconds:>8.1f} "
                f"{lines / seconds:>10,.0f} {peak / _bench.MIB:>12.0f}",
                flush=True,
            )
        print()
        first, last = sizes[0], sizes[-1]
        print(
            f"peak RSS ratio {labels[last]}/{labels[first]}: {peaks[last] / peaks[first]:.2f} "
            f"(bounded memory: about 1.00); above the import baseline: "
            f"{(peaks[first] - baseline) / _bench.MIB:.0f} MiB vs "
            f"{(peaks[last] - baseline) / _bench.MIB:.0f} MiB"
        )
        _bench.footer()
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
