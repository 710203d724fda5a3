"""A run worker started ahead of its run: `python -m loglens_pipeline.instance.run_worker`.

It imports Dagster and the LogLens definitions and opens the instance, then waits for one run
id on stdin, executes that run exactly as `dagster api execute_run` does, and exits. Its
launcher (`launcher.WarmRunLauncher`) starts the next one meanwhile. End of input without a
run id (the launcher's process ended) makes it exit without doing anything.

If the project's configs or LogLens's code changed while it waited, it does not run the stale
definitions it loaded: it replaces itself with a fresh process that loads them again
(`--run-id`), which is what a run worker started on demand would have done.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

MODULE = "loglens_pipeline.instance.run_worker"  # run with -m: __name__ is "__main__" then
INSTANCE_REF_ENV = "LOGLENS_RUN_WORKER_INSTANCE_REF"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.rglob(pattern)) if folder.is_dir() else []


def code_fingerprint() -> tuple:
    """What the loaded definitions were built from: LogLens's modules and the project configs."""
    from loglens_pipeline.config import ProjectPaths

    configs = ProjectPaths.from_env().config_dir
    files = _files(PACKAGE_DIR, "*.py") + _files(configs, "*.y*ml")
    stats = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        stats.append((str(path), stat.st_mtime_ns, stat.st_size))
    return (str(configs), tuple(stats))


def _instance():
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value

    ref = os.environ.get(INSTANCE_REF_ENV)
    if ref is None:
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.from_ref(deserialize_value(ref, InstanceRef))


def execute(instance, run_id: str) -> int:
    """Execute one run in this process, as `dagster api execute_run` does."""
    from dagster._cli.api import _execute_run_command_body

    return _execute_run_command_body(
        run_id, instance, write_stream_fn=lambda _event: None, set_exit_code_on_failure=False
    )


def _warm_up() -> tuple:
    """Import what every run imports; a definitions error is left for the run to report."""
    fingerprint = code_fingerprint()
    # On an error the run imports it again and fails with it, like a worker started on demand.
    with contextlib.suppress(Exception):
        import loglens_pipeline.definitions  # noqa: F401  builds the project's definitions
    return fingerprint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", help="execute this run at once (no waiting for stdin)")
    args = parser.parse_args(argv)
    if args.run_id:
        with _instance() as instance:
            return execute(instance, args.run_id)
    # Ctrl-C in `loglens dev`'s terminal reaches the whole process group: a spare ends when the
    # daemon does (its stdin closes), a worker with a run is interrupted like any run worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fingerprint = _warm_up()
    with _instance() as instance:
        run_id = sys.stdin.readline().strip()
        if not run_id:
            return 0
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if code_fingerprint() != fingerprint:
            python = sys.executable
            os.execv(python, [python, "-m", MODULE, "--run-id", run_id])
        return execute(instance, run_id)


if __name__ == "__main__":
    sys.exit(main())
