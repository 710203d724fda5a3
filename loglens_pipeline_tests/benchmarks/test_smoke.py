"""The benchmark scripts still run: each one with `--smoke` (tiny sizes), checked for its figures.

No timing is asserted: the scripts print figures, and this only guards them against rot (a
renamed function, a changed config). The scripts run concurrently as subprocesses, so the whole
module takes about as long as the slowest one. `benchmarks/end_to_end.py` starts the real
`loglens dev` and takes minutes; it runs here only with `LOGLENS_BENCH_E2E=1`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loglens_pipeline.config.paths import REPO_ROOT

pytestmark = pytest.mark.slow

BENCHMARKS = REPO_ROOT / "benchmarks"
TIMEOUT_S = 300

# Script -> labels its --smoke output must contain (figures the docs quote).
EXPECTED = {
    "ingest_throughput.py": [
        "command: ",
        "machine: ",
        "date: ",
        "json   loglens",
        "json   python",
        "json   duckdb",
        "text   loglens",
        "text   python",
        "text   duckdb_split",
        "lines/s min / median / max",
        "MB/s median",
        "peak RSS MiB",
        "ratio json loglens/duckdb: ",
        "ratio text loglens/duckdb: ",
        "ratio text loglens/python: ",
    ],
    "instance_storage.py": [
        "command: ",
        "machine: ",
        "engine event",
        "materialization",
        "latest lookup",
        "speed-up",
    ],
    "memory.py": [
        "command: ",
        "machine: ",
        "peak RSS MiB",
        "peak RSS ratio 16MB/4MB: ",
    ],
    "metrics.py": [
        "command: ",
        "machine: ",
        "hour run, first (empty metric tables): ",
        "hour run seconds min / median / max",
        "sum of per-metric compute: ",
        "requests_per_service",
        "backfill run: ",
    ],
    "scaling.py": [
        "command: ",
        "machine: ",
        "vs 1 file",
        "ms per metric",
    ],
}
if os.environ.get("LOGLENS_BENCH_E2E") == "1":
    EXPECTED["end_to_end.py"] = ["command: ", "latency over 1 drops: median ", "processes left: 0"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Start every script with --smoke at once; (exit code, stdout + stderr) of each."""
    folder = tmp_path_factory.mktemp("bench-smoke")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(folder)}
    running = {}
    for script in EXPECTED:
        log = (folder / f"{script}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / script), "--smoke"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        running[script] = (proc, log)
    deadline = time.monotonic() + TIMEOUT_S
    results = {}
    for script, (proc, log) in running.items():
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
        results[script] = (code, Path(log.name).read_text())
    return results


@pytest.mark.parametrize("script", list(EXPECTED))
def test_benchmark_smoke(script: str, outputs: dict[str, tuple[int, str]]) -> None:
    code, output = outputs[script]
    assert code == 0, f"{script} --smoke exited with {code}:\n{output[-4000:]}"
    missing = [label for label in EXPECTED[script] if label not in output]
    assert not missing, f"{script} --smoke did not print {missing}:\n{output[-4000:]}"
