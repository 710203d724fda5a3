"""Shared helpers of the benchmark scripts: header line, spawned children, statistics, projects.

Not a benchmark itself. Scripts run as `python benchmarks/<name>.py`, so this folder is on
`sys.path` and they `import _bench`; the repository root is added too, so the scripts also run
without the editable install.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import shlex
import shutil
import statistics
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SHIPPED_CONFIGS = REPO_ROOT / "configs"
MIB = 2**20


# --- header -------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def header(title: str) -> None:
    """The header every script prints first: command, machine, load, date, versions."""
    import duckdb

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"== {title}")
    print(f"command: {command}")
    print(
        f"machine: {os.cpu_count()} cores ({cpu_model()}), {_memory_gib():.1f} GiB memory, "
        f"{platform.system()} {platform.machine()}; load average {load_average()} (1/5/15 min)"
    )
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}"
    )
    sys.stdout.flush()


def footer() -> None:
    print(f"load average at the end: {load_average()} (1/5/15 min)")


# --- sizes and statistics -----------------------------------------------------------------------


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}
_BYTE_SUFFIXES = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def count(text: str) -> int:
    """`1000000`, `1_000_000`, `1M`, `200k` -> int."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    if text and text[-1] in _SUFFIXES:
        return int(float(text[:-1]) * _SUFFIXES[text[-1]])
    return int(text)


def size_bytes(text: str) -> int:
    """`1GB`, `512MB`, `4GiB`, `100000` (bytes) -> int (binary units: 1GB = 2**30)."""
    text = text.strip().lower()
    for suffix in sorted(_BYTE_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _BYTE_SUFFIXES[suffix])
    return int(text)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def min_med_max(values: Sequence[float], fmt: str = ",.0f") -> str:
    ordered = sorted(values)
    med = statistics.median(ordered)
    return f"{ordered[0]:{fmt}} / {med:{fmt}} / {ordered[-1]:{fmt}}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --- children -----------------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """Peak resident set size of the calling process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child_main(target: Callable[..., Any], args: tuple, queue) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException:
        queue.put(("error", traceback.format_exc()))


class ChildFailed(RuntimeError):
    """A measurement child raised; the message holds its traceback."""


def in_child(target: Callable[..., Any], *args: Any) -> Any:
    """Run `target(*args)` in a fresh spawned interpreter and return its (picklable) result.

    A fresh process per measurement: its peak RSS (`peak_rss_bytes` called by `target`) belongs
    to that measurement alone, and no warm cache or import of an earlier one helps it.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_main, args=(target, args, queue))
    child.start()
    try:
        while True:
            try:
                status, value = queue.get(timeout=1.0)
                break
            except Exception:  # queue.Empty: check the child is still alive
                if not child.is_alive():
                    raise ChildFailed(
                        f"measurement child died with exit code {child.exitcode}"
                    ) from None
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            child.join()
    if status != "ok":
        raise ChildFailed(value)
    return value


# --- temporary projects -------------------------------------------------------------------------


def write_project(
    root: Path,
    *,
    overrides: Callable[[dict], None] | None = None,
    metrics: list[dict] | None = None,
):
    """Copy the shipped configs under `root/configs` (data dir `root/data`) and load them.

    `overrides` edits loglens.yaml; `metrics` replaces the `metrics:` list of metrics.yaml.
    Like `loglens_pipeline_tests.conftest.write_project`, without importing the test package.
    """
    import yaml

    from loglens_pipeline.config import ProjectPaths
    from loglens_pipeline.defs.project import Project

    config_dir = root / "configs"
    shutil.copytree(SHIPPED_CONFIGS, config_dir, dirs_exist_ok=True)
    if overrides is not None:
        main = config_dir / "loglens.yaml"
        data = yaml.safe_load(main.read_text())
        overrides(data)
        main.write_text(yaml.safe_dump(data, sort_keys=False))
    if metrics is not None:
        (config_dir / "metrics.yaml").write_text(
            yaml.safe_dump({"metrics": metrics}, sort_keys=False)
        )
    (root / "data").mkdir(parents=True, exist_ok=True)
    return Project.load(ProjectPaths(config_dir, root / "data"))


def load_project(root: Path):
    """The project written by `write_project` under `root` (in a child process)."""
    from loglens_pipeline.config import ProjectPaths
    from loglens_pipeline.defs.project import Project

    return Project.load(ProjectPaths(root / "configs", root / "data"))


def shipped_metrics() -> list[dict]:
    """The metric entries of the shipped configs/metrics.yaml, as plain dicts."""
    import yaml

    return yaml.safe_load((SHIPPED_CONFIGS / "metrics.yaml").read_text())["metrics"]


def ingest_all(project, *, sources: Sequence[str] | None = None):
    """Ingest every file of the project's sources (or `sources`) with the real ingestion path."""
    from loglens_pipeline.ingest.discovery import source_files
    from loglens_pipeline.ingest.identity import stat_file
    from loglens_pipeline.ingest.ingestor import ingest_files
    from loglens_pipeline.warehouse.connection import connect
    from loglens_pipeline.warehouse.schema import ensure_raw_schema

    work = []
    for source in project.config.sources:
        if sources is not None and source.name not in sources:
            continue
        for path in source_files(project.logs_dir, source):
            state = stat_file(path, source.name)
            if state is not None:
                work.append((source, state))
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        return ingest_files(
            conn, work, project.config.ingest, ingested_at=datetime.now(UTC).replace(tzinfo=None)
        )


def sample_logs(folder: Path, start: datetime, hours: int, lines_per_hour: int, seed: int):
    """The benchmarks' seeded sample: 0.5% malformed lines, 1% out of order."""
    from loglens_pipeline.samples.generator import generate_sample_logs

    return generate_sample_logs(
        folder,
        start=start,
        hours=hours,
        lines_per_hour=lines_per_hour,
        seed=seed,
        malformed_fraction=0.005,
        out_of_order_fraction=0.01,
    )


def append_app_files(manifest, folder: Path, out) -> None:
    """Append every JSON app file of a generated sample under `folder` to the open file `out`."""
    for entry in manifest.files:
        if entry.source == "app":
            with open(folder / entry.path, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 22)


def generate_events(
    logs_dir: Path, start: datetime, hours: int, events: int, *, seed: int = 7, tolerance=0.02
):
    """Seeded sample logs with about `events` lines in total over `hours` hours from `start`.

    Half are JSON app lines, half nginx lines (the generator mirrors every request in the access
    log). The generator's traffic follows a diurnal curve, so `lines_per_hour` is an average
    over whole days: one generation measures the actual count, a second one corrects the rate
    when it is off by more than `tolerance`. 0.5% malformed lines, 1% out of order.
    """
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    lines_per_hour = max(1, events // 2 // hours)
    for _ in range(2):
        manifest = sample_logs(logs_dir, start, hours, lines_per_hour, seed)
        if abs(manifest.total_lines - events) <= tolerance * events:
            break
        lines_per_hour = max(1, round(lines_per_hour * events / max(1, manifest.total_lines)))
    return manifest
