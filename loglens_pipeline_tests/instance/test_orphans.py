"""A killed in-process run must not hold the `warehouse` pool for ever (tests with real processes).

A child process starts an in-process ingest run whose step stops while it holds the pool's
only slot; the test kills the child (SIGKILL: nothing is cleaned up), then ingests in another
process. That run must finish, the killed one must read as failed with the reason, and the
warehouse must hold every line exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from loglens_pipeline.instance import open_instance
from loglens_pipeline.instance.orphans import (
    PROCESS_TAG,
    alive,
    fail_orphaned_runs,
    process_identity,
    process_tag,
)
from loglens_pipeline_tests.conftest import query
from loglens_pipeline_tests.defs.test_metric_assets import write_events

pytestmark = pytest.mark.slow

INGEST = (
    "from loglens_pipeline.definitions import build_definitions\n"
    "from loglens_pipeline.defs.project import Project\n"
    "from loglens_pipeline.instance import open_instance\n"
    "from loglens_pipeline.runs import run_ingest\n"
    "project = Project.load()\n"
    "instance = open_instance(project.paths.data_dir / 'dagster_home')\n"
    "assert run_ingest(build_definitions(project), instance, trigger='test').success\n"
)


def test_a_killed_in_process_run_is_failed_and_frees_the_pool(project, tmp_path):
    write_events(project, "one", datetime(2026, 11, 20, 12), 300)
    env = {
        **os.environ,
        "LOGLENS_CONFIG_DIR": str(project.paths.config_dir),
        "LOGLENS_DATA_DIR": str(project.paths.data_dir),
    }
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-m", "loglens_pipeline_tests.instance.stalled_ingest", str(ready)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, "the stalled run's process ended early"
            assert time.monotonic() < deadline, "the stalled run never reached its step"
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    home = project.paths.data_dir / "dagster_home"
    with open_instance(home) as instance:
        [killed] = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots

    # Without the fix this run waits for the slot for ever: the timeout turns that into a failure.
    subprocess.run([sys.executable, "-c", INGEST], env=env, check=True, timeout=180)

    with open_instance(home) as instance:
        runs = {run.run_id: run for run in instance.get_runs()}
        assert runs[killed.run_id].status == dg.DagsterRunStatus.FAILURE
        assert [r.status for r in runs.values() if r.run_id != killed.run_id] == [
            dg.DagsterRunStatus.SUCCESS
        ]
        messages = [
            e.message
            for e in instance.all_logs(killed.run_id)
            if "ended before the run did" in (e.message or "")
        ]
        assert messages, "the failed run says why"
    [(lines, events, quarantined)] = query(
        project, "SELECT sum(lines), sum(events), sum(quarantined) FROM raw.file_offsets"
    )
    assert lines == events + quarantined == 600  # 300 app + 300 nginx lines, once each
    assert query(project, "SELECT count(*) FROM raw.events")[0][0] == events


def test_runs_of_live_processes_and_other_hosts_are_left_alone(instance):
    live = instance.create_run_for_job(dg.GraphDefinition("live").to_job(), tags=process_tag())
    elsewhere = instance.create_run_for_job(
        dg.GraphDefinition("elsewhere").to_job(), tags={PROCESS_TAG: "another-host:1:1"}
    )
    for run in (live, elsewhere):
        instance.handle_run_event(
            run.run_id,
            dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name),
        )
    assert fail_orphaned_runs(instance) == []
    assert {instance.get_run_by_id(r.run_id).status for r in (live, elsewhere)} == {
        dg.DagsterRunStatus.STARTED
    }


def test_an_ended_child_not_yet_collected_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    deadline = time.monotonic() + 30
    # Ended but not waited for: a zombie, which still answers signals.
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        assert alive(identity) is False
    finally:
        child.wait()
    assert alive(process_identity(os.getpid())) is True
    assert alive("another-host:1:1") is None
