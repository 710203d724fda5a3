"""`WarmRunLauncher` with real worker processes: runs go to workers started before them.

Runs are created for `warm_jobs.report_job` with its module origin and launched through the
instance, as the daemon launches queued runs; every test waits for the real outcome in the
run storage.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher import WorkerStatus

from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.instance.launcher import WORKER_TAG, WarmRunLauncher
from loglens_pipeline.instance.orphans import identity_pid
from loglens_pipeline_tests.conftest import shipped_test_instance

pytestmark = pytest.mark.slow

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@pytest.fixture
def instance(tmp_path, monkeypatch):
    # Workers warm up on a copy of the configs, so a test can change them meanwhile.
    configs = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "configs", configs)
    monkeypatch.setenv("LOGLENS_CONFIG_DIR", str(configs))
    yield from shipped_test_instance(tmp_path / "dagster_home")


def launch(instance: dg.DagsterInstance, sleep_seconds: float = 0.0) -> str:
    repo = ReconstructableRepository.for_module(
        "loglens_pipeline_tests.instance.warm_jobs", "defs", working_directory=str(REPO_ROOT)
    )
    job = repo.get_reconstructable_job("report_job")
    run = instance.create_run_for_job(
        job_def=job.get_definition(),
        job_code_origin=job.get_python_origin(),
        run_config={"ops": {"report_process": {"config": {"sleep_seconds": sleep_seconds}}}},
    )
    instance.launch_run(run.run_id, workspace=None)
    return run.run_id


def wait_for(instance, run_id: str, statuses, timeout: float = 120) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while True:
        run = instance.get_run_by_id(run_id)
        if run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
        time.sleep(0.1)


def worker_pid(run: dg.DagsterRun) -> int:
    return identity_pid(run.tags[WORKER_TAG])


def logged(instance, run_id: str) -> str:
    return "\n".join(record.user_message for record in instance.all_logs(run_id))


def test_the_shipped_instance_launches_runs_on_warm_workers(instance):
    assert isinstance(instance.run_launcher, WarmRunLauncher)


def test_each_run_goes_to_the_worker_started_before_it(instance):
    first = wait_for(instance, launch(instance), FINISHED)
    assert first.status == dg.DagsterRunStatus.SUCCESS, logged(instance, first.run_id)
    spare = instance.run_launcher._spare
    assert spare is not None and spare.poll() is None  # warming up, or waiting for a run
    second = wait_for(instance, launch(instance), FINISHED)
    assert second.status == dg.DagsterRunStatus.SUCCESS, logged(instance, second.run_id)
    assert worker_pid(second) == spare.pid
    messages = logged(instance, second.run_id)
    assert f"worker pid={spare.pid}" in messages
    assert "--run-id" not in messages  # it ran the definitions it had loaded
    assert worker_pid(first) != spare.pid


def test_a_worker_reloads_when_the_configs_changed_while_it_waited(instance):
    # The spare starts with the first run's worker and reads what it loads first thing: it has
    # done so long before the first run (a cold start) is over.
    wait_for(instance, launch(instance), FINISHED)
    spare = instance.run_launcher._spare
    with (Path(os.environ["LOGLENS_CONFIG_DIR"]) / "metrics.yaml").open("a") as handle:
        handle.write("\n# edited\n")
    run = wait_for(instance, launch(instance), FINISHED)
    assert run.status == dg.DagsterRunStatus.SUCCESS, logged(instance, run.run_id)
    messages = logged(instance, run.run_id)
    assert f"worker pid={spare.pid}" in messages  # the same process, replaced by a fresh load
    assert f"--run-id {run.run_id}" in messages


def test_terminating_a_run_interrupts_its_worker(instance):
    run_id = launch(instance, sleep_seconds=120)
    wait_for(instance, run_id, {dg.DagsterRunStatus.STARTED})
    deadline = time.monotonic() + 60
    while "worker pid=" not in logged(instance, run_id):  # inside its step
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert instance.run_launcher.terminate(run_id)
    run = wait_for(instance, run_id, FINISHED, timeout=60)
    assert run.status == dg.DagsterRunStatus.CANCELED


def test_run_monitoring_sees_a_killed_worker(instance):
    run_id = launch(instance, sleep_seconds=120)
    run = wait_for(instance, run_id, {dg.DagsterRunStatus.STARTED})
    launcher = instance.run_launcher
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(worker_pid(run), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while launcher.check_run_worker_health(run).status != WorkerStatus.FAILED:
        assert time.monotonic() < deadline, "the killed worker still reads as running"
        time.sleep(0.1)
    assert "ended before the run did" in launcher.check_run_worker_health(run).msg


def test_a_spare_worker_exits_when_its_launcher_goes_away(instance):
    wait_for(instance, launch(instance), FINISHED)
    spare = instance.run_launcher._spare
    assert spare.poll() is None
    spare.stdin.close()  # what the launcher's process ending does to the pipe
    assert spare.wait(timeout=60) == 0
