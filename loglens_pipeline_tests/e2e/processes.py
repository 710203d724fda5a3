"""Real processes for the end-to-end tests: `loglens dev` (Dagster webserver + daemon) and Chromium.

Each process is started as the leader of its own session, hence of its own process group, with
SIGINT and SIGTERM reset to their defaults. Everything it spawns (`dagster dev` -> webserver,
daemon, code server -> run workers -> `tail` helpers of the compute-log manager; Chromium ->
zygote, renderers, crashpad) stays in that group, so the whole tree is stopped by signalling the
group and is known to be gone once `os.killpg(pgid, 0)` raises `ProcessLookupError`.

Why the signal reset: Dagster maps SIGTERM to whatever SIGINT does, and a process started in the
background by a non-interactive shell inherits SIGINT as *ignored*; without the reset
`dagster dev` would ignore SIGTERM whenever pytest itself runs in the background (as in CI).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loglens_pipeline.instance import prepare_dagster_home

try:
    import psutil
except ImportError:  # psutil is a dev extra; without it only os.killpg is used
    psutil = None

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
TERM_GRACE_S = 30.0  # `dagster dev` waits up to 10 s per child itself; it takes ~5 s here
KILL_GRACE_S = 10.0
REQUIRED_DAEMONS = ("SENSOR", "QUEUED_RUN_COORDINATOR")  # what sensor-triggered runs need

READINESS_QUERY = """
query E2EReadiness {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name sensors { name } } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class GraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with `errors`."""


class ProcessExitedError(RuntimeError):
    """The processes died (or the code location failed) before becoming ready."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (start-up retries if it got taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# Undo an inherited SIG_IGN of SIGINT/SIGTERM (see the module doc), then exec the command. A tiny
# exec shim rather than `preexec_fn`, which is unsafe while other threads run (the UI test starts
# several browsers at once).
_EXEC_WITH_DEFAULT_SIGNALS = (
    "import os, signal, sys; "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def start_group(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout: Path,
    stderr: Path | None = None,
) -> subprocess.Popen:
    """Start `cmd` as a new session/process-group leader; output appended to files.

    `stderr=None` sends stderr to the `stdout` file.
    """
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout, "ab"))
        err = stack.enter_context(open(stderr, "ab")) if stderr else subprocess.STDOUT
        return subprocess.Popen(
            [sys.executable, "-c", _EXEC_WITH_DEFAULT_SIGNALS, *cmd],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def live_members(pgid: int) -> list[str]:
    """Processes of group `pgid` that are still alive (zombies waiting for a reaper excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # something exists in the group (not ours to signal): report it below
    if psutil is None:
        return [f"process group {pgid} (install psutil to list its members)"]
    found = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(proc.pid) != pgid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, psutil.Error):
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])[:160]
        found.append(f"pid {proc.pid} [{proc.info['status']}] {cmdline}")
    return found


def _wait_group_gone(proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.2)  # reap the leader: it is our child, it would stay a zombie
        if proc.returncode is not None and not live_members(proc.pid):
            return True
        if time.monotonic() >= deadline:
            return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop_group(
    proc: subprocess.Popen, *, term_grace: float = TERM_GRACE_S, kill_grace: float = KILL_GRACE_S
) -> list[str]:
    """SIGTERM the group, SIGKILL it after `term_grace` s; return what is left (empty: all gone)."""
    pgid = proc.pid  # session leader: pgid == pid
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_group_gone(proc, term_grace):
        _signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(proc, kill_grace)
    return live_members(pgid)


@dataclass
class LiveDagster:
    """A running `loglens dev` (i.e. `dagster dev`: webserver + daemon + code server)."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    location: str = "loglens"
    repository: str = "__repository__"
    stop_seconds: float | None = None
    leftovers: list[str] | None = field(default=None, repr=False)

    @property
    def pgid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """POST a query to /graphql and return its `data`; GraphQL `errors` raise GraphQLError."""
        request = urllib.request.Request(
            f"{self.base_url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"], indent=1)[:4000])
        return body["data"]

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return _ANSI.sub("", "\n".join(text.splitlines()[-lines:]))

    def describe(self, message: str) -> str:
        """`message` plus the tail of the processes' output, for assertion messages."""
        return f"{message}\n--- tail of {self.log_path} ---\n{self.log_tail()}"

    def wait_until_ready(
        self, timeout: float = READY_TIMEOUT_S, sensors: tuple[str, ...] = ("log_file_sensor",)
    ) -> float:
        """Poll /server_info, then GraphQL until the code location is loaded with `sensors` and
        the daemons runs need are healthy. Returns the seconds it took."""
        start = time.monotonic()
        waiting_for = "nothing yet"
        while True:
            if self.proc.poll() is not None:
                raise ProcessExitedError(
                    self.describe(
                        f"`loglens dev` exited with code {self.proc.returncode} before it was ready"
                    )
                )
            try:
                waiting_for = self._not_ready_reason(sensors)
            except (OSError, urllib.error.URLError, ValueError, GraphQLError) as exc:
                waiting_for = f"{type(exc).__name__}: {exc}"
            if waiting_for is None:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(
                    self.describe(
                        f"Dagster not ready after {timeout:.0f} s; still waiting for: {waiting_for}"
                    )
                )
            time.sleep(1.0)

    def _not_ready_reason(self, sensors: tuple[str, ...]) -> str | None:
        with urllib.request.urlopen(f"{self.base_url}/server_info", timeout=5) as response:
            json.loads(response.read())
        data = self.graphql(READINESS_QUERY, timeout=10)
        workspace = data["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            return f"workspace: {workspace}"
        found: set[str] = set()
        for entry in workspace["locationEntries"]:
            location = entry["locationOrLoadError"]
            if entry["loadStatus"] != "LOADED" or location is None:
                return f"code location {entry['name']} ({entry['loadStatus']})"
            if location["__typename"] == "PythonError":
                # Definitions that fail to load will not fix themselves: fail fast.
                raise ProcessExitedError(
                    self.describe(
                        f"code location {entry['name']} failed to load: {location['message']}"
                    )
                )
            for repo in location["repositories"]:
                names = {s["name"] for s in repo["sensors"]}
                if names & set(sensors):
                    self.location, self.repository = location["name"], repo["name"]
                found |= names
        if missing := set(sensors) - found:
            return f"sensors {sorted(missing)} in the workspace"
        healthy = {
            d["daemonType"]: d["healthy"]
            for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
        }
        unhealthy = [d for d in REQUIRED_DAEMONS if not healthy.get(d)]
        return f"healthy daemons {unhealthy}" if unhealthy else None

    def stop(self) -> list[str]:
        """Stop the whole process group (idempotent); returns the processes left (should be [])."""
        if self.leftovers is None:
            start = time.monotonic()
            self.leftovers = stop_group(self.proc)
            self.stop_seconds = time.monotonic() - start
        return self.leftovers


def start_loglens_dev(
    *,
    dagster_home: Path,
    config_dir: Path,
    data_dir: Path,
    log_path: Path,
    ready_timeout: float = READY_TIMEOUT_S,
    attempts: int = 2,
) -> LiveDagster:
    """`loglens dev --host 127.0.0.1 --port <free>` against a temporary project and instance.

    Retries on another port when the webserver could not bind its port (a race with
    `free_port`). The caller must `stop()` the result; an atexit hook is a last resort.
    """
    prepare_dagster_home(dagster_home)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "LOGLENS_CONFIG_DIR": str(config_dir),
        "LOGLENS_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    for attempt in range(1, attempts + 1):
        port = free_port()
        with open(log_path, "a") as log:
            log.write(f"=== attempt {attempt}: loglens dev --port {port}\n")
        proc = start_group(
            [
                sys.executable,
                "-m",
                "loglens_pipeline.cli",
                "dev",
                "--host",
                HOST,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log_path,
        )
        live = LiveDagster(proc, port, log_path)
        atexit.register(live.stop)
        try:
            live.wait_until_ready(ready_timeout)
            return live
        except ProcessExitedError:
            live.stop()
            if attempt < attempts and "address already in use" in live.log_tail().lower():
                continue
            raise
        except BaseException:
            live.stop()
            raise
    raise AssertionError("unreachable")


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)


@dataclass
class ChromiumResult:
    returncode: int | None  # None: killed after the timeout
    stdout: bytes
    leftovers: list[str]


def run_chromium(
    chromium: str,
    url: str,
    args: list[str],
    *,
    profile_dir: Path,
    work_dir: Path,
    timeout: float = 90.0,
) -> ChromiumResult:
    """One headless Chromium invocation in its own process group, which is always emptied."""
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = uuid.uuid4().hex[:12]
    out_path, err_path = work_dir / f"chromium-{stamp}.out", work_dir / "chromium.log"
    with open(err_path, "a") as err:
        err.write(f"=== {url} {' '.join(args)}\n")
    proc = start_group(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args, url],
        stdout=out_path,
        stderr=err_path,
    )
    try:
        returncode: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        returncode = None
    leftovers = stop_group(proc, term_grace=10.0, kill_grace=5.0)
    return ChromiumResult(returncode, out_path.read_bytes(), leftovers)
