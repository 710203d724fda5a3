"""In-process runs whose process died: marked failed, their `warehouse` pool slot freed.

A run executed in the CLI's or the demo's own process (`execute_in_process`) that is killed
mid-step stays STARTED for ever: no run worker or launcher is there to notice. It also keeps
the slot of the `warehouse` pool (limit 1) its step claimed, so every later warehouse writer,
in-process or launched by the daemon, waits for it for ever. Each in-process run therefore
names its process in a tag, and before the next one starts, runs of this host whose process
is gone are failed and their slots freed. (Runs launched by the daemon are covered by run
monitoring: it fails a run whose worker died (`launcher.WarmRunLauncher` answers its health
checks) and, with `free_slots_after_run_end_seconds` in `dagster.yaml`, frees the slots of
ended runs.)
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

PROCESS_TAG = "loglens/process"
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (state first); empty where there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> str:
    """When the process started (clock ticks since boot, Linux), so a reused pid is not taken
    for the process that ran the run; empty where /proc does not exist."""
    stat = _stat(pid)
    return stat[19] if stat else ""  # field 22 of the file


def process_tag() -> dict[str, str]:
    """The tag naming this process: `host:pid:start`."""
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{start_time(pid)}"}


def alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _stat(pid)
    if stat and stat[0] in ("Z", "X"):
        return False  # ended; only its parent has not collected its exit status yet
    return start_time(pid) == start


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this host's in-process runs whose process is gone and free their pool slots."""
    host = socket.gethostname()
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        owner = run.tags.get(PROCESS_TAG)
        if owner is None:
            continue
        run_host, pid, start = owner.rsplit(":", 2)
        if run_host != host or alive(int(pid), start):
            continue
        instance.report_run_failed(
            run, message=f"The process that ran it in-process ({owner}) ended before the run did."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed
