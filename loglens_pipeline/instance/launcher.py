"""`WarmRunLauncher`: each run goes to a worker process that was started before the run was.

Dagster's `DefaultRunLauncher` asks the code server to spawn a fresh interpreter for every run,
which imports Dagster, pandas and LogLens and loads the definitions before the first step: about
5 s on 2 cores, three times per file drop (ingestion, metrics, reader copy). This launcher keeps
one spare `run_worker` process that has done all of that and waits for a run id on its stdin;
handing a run over takes milliseconds, and the next spare starts warming up at once. The first
run of a process, and runs whose job must load with another Python than this one, start the
worker then (or go to the code server), like the stock launcher.

Termination interrupts the worker (SIGINT), as the code server does with its run processes, and
run monitoring asks whether the worker process is still alive, so a killed worker's run is
failed and its pool slots freed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._serdes import ConfigurableClassData, serialize_value

from loglens_pipeline.instance import run_worker
from loglens_pipeline.instance.orphans import alive, identity_pid, process_identity

WORKER_TAG = "loglens/run_worker"  # `host:pid:start` of the process executing the run


class WarmRunLauncher(DefaultRunLauncher):
    """Launches runs on pre-started `run_worker` processes of this host."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        super().__init__(inst_data=inst_data)
        self._lock = threading.Lock()
        self._spare: subprocess.Popen | None = None
        self._workers: dict[str, subprocess.Popen] = {}

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data)

    def _start_worker(self) -> subprocess.Popen:
        env = {**os.environ, run_worker.INSTANCE_REF_ENV: serialize_value(self._instance.get_ref())}
        return subprocess.Popen(
            [sys.executable, "-m", run_worker.MODULE],
            stdin=subprocess.PIPE,
            env=env,
            text=True,
        )

    def _hand_over(self, run_id: str) -> subprocess.Popen:
        """Give the run to the spare worker (or a new one if there is none or it died)."""
        for worker in (self._spare, None):
            worker = worker or self._start_worker()
            try:
                assert worker.stdin is not None
                worker.stdin.write(run_id + "\n")
                worker.stdin.close()
                return worker
            except OSError:  # the spare exited (killed, or its warm-up crashed)
                worker.kill()
        raise RuntimeError(f"no run worker could be started for run {run_id}")

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if origin is not None and origin.executable_path != sys.executable:
            # The code location runs another Python: its code server starts the worker.
            super().launch_run(context)
            return
        with self._lock:
            worker = self._hand_over(run.run_id)
            self._spare = self._start_worker()
            self._workers = {k: w for k, w in self._workers.items() if w.poll() is None}
            self._workers[run.run_id] = worker
        self._instance.add_run_tags(run.run_id, {WORKER_TAG: process_identity(worker.pid)})

    def _worker_alive(self, run: dg.DagsterRun) -> bool | None:
        """Whether the run's worker runs; None when it has none or it is on another host."""
        # A worker this process started is a child: poll() collects its exit status.
        worker = self._workers.get(run.run_id)
        if worker is not None:
            return worker.poll() is None
        identity = run.tags.get(WORKER_TAG)
        return None if identity is None else alive(identity)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if WORKER_TAG not in run.tags:
            return super().terminate(run_id)
        running = self._worker_alive(run)
        if running is None:
            self._instance.report_engine_event(
                f"Its run worker is on another host ({run.tags[WORKER_TAG]}): terminate the "
                "run from there.",
                run,
            )
            return False
        self._instance.report_run_canceling(run)
        if not running:
            self._instance.report_run_canceled(run, message="Its run worker had already ended.")
            return True
        os.kill(identity_pid(run.tags[WORKER_TAG]), signal.SIGINT)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        # Run monitoring fails a run on any other answer than RUNNING or SUCCESS: runs this
        # launcher cannot see (launched by the code server, or on another host) are left to it.
        running = self._worker_alive(run)
        if running is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not a run worker of this host")
        if running:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker {run.tags.get(WORKER_TAG, '')} ended before the run did",
        )

    def dispose(self) -> None:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare.poll() is None:
            spare.kill()  # waiting for a run that will not come
            spare.wait()
        super().dispose()
