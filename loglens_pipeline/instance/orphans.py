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


def process_identity(pid: int) -> str:
    """`host:pid:start` of a process of this host: what run tags name a process by."""
    return f"{socket.gethostname()}:{pid}:{start_time(pid)}"


def identity_pid(identity: str) -> int:
    return int(identity.rsplit(":", 2)[1])


def process_tag() -> dict[str, str]:
    """The tag naming this process."""
    return {PROCESS_TAG: process_identity(os.getpid())}


def alive(identity: str) -> bool | None:
    """Whether the process `process_identity` named is still running; None on another host."""
    host, pid, start = identity.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _stat(int(pid))
    if not stat:
        return start == ""  # no /proc here: the signal is all there is to go by
    # A zombie has ended; only its parent has not collected its exit status yet.
    return stat[0] not in ("Z", "X") and stat[19] == start


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this host's in-process runs whose process is gone and free their pool slots."""
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        owner = run.tags.get(PROCESS_TAG)
        if owner is None:
            continue
        if alive(owner) is not False:  # running, or on another host
            continue
        instance.report_run_failed(
            run, message=f"The process that ran it in-process ({owner}) ended before the run did."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed
