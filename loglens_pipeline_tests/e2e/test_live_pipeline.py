"""End to end with the real `dagster dev` (webserver + daemon): files dropped into the watched
folder are ingested by the sensor's runs; sample logs with an injected outage are backfilled by
the daemon, fail the `no_anomalies` check with WARN and land in the BI reader copy; the UI
renders the asset graph, the outage's metric partition and the check in headless Chromium.

One `loglens dev` serves every test of this module (module-scoped fixture) against a temporary
project (a copy of `configs/`, an empty data directory) and a temporary DAGSTER_HOME holding the
shipped `dagster.yaml`. Teardown stops the process group and fails if any process is left.

Run: `pytest loglens_pipeline_tests/e2e -m e2e`. Screenshots go to `artifacts/screenshots/`,
the processes' output and the measured latencies to `artifacts/e2e/`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loglens_pipeline.config import ProjectPaths
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.defs.project import Project
from loglens_pipeline.instance.launcher import WORKER_TAG
from loglens_pipeline.instance.orphans import identity_pid
from loglens_pipeline.samples.generator import Incident, SampleManifest, generate_sample_logs
from loglens_pipeline_tests.e2e.processes import LiveDagster, run_chromium, start_loglens_dev

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ARTIFACTS = REPO_ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
E2E_ARTIFACTS = ARTIFACTS / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
RUN_TIMEOUT_S = 120.0  # a run can queue behind other runs of the "warehouse" pool (limit 1)
SENSOR = "log_file_sensor"
JOB = "ingest_job"
RAW_EVENTS_PATH = ["raw", "events"]
MALFORMED = [
    '{"ts": "2026-03-01T12:00:00Z", "level": "INFO", "msg": "truncated',
    "{not json at all",
]

RUNS_QUERY = """
query E2EIngestRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 50) {
    __typename
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
    ... on Error { message }
  }
}
"""

ALL_RUNS_QUERY = """
query E2EAllRuns {
  runsOrError(limit: 20) {
    ... on Runs { results { runId jobName status creationTime tags { key value } } }
  }
}
"""

RUN_ERRORS_QUERY = """
query E2ERunErrors($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { level stepKey message } } }
    ... on Error { message }
  }
}
"""

SENSOR_QUERY = """
query E2ESensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { name sensorState { status } targets { pipelineName } }
    ... on Error { message }
  }
}
"""

ASSET_QUERY = """
query E2EAsset($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 20) {
        runId
        timestamp
        metadataEntries { label ... on IntMetadataEntry { intRepr } }
      }
      definition { jobNames }
    }
    ... on Error { message }
  }
}
"""


@dataclass
class LiveProject:
    dagster: LiveDagster
    project: Project
    root: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProject]:
    """`loglens dev` on a free port for a temporary project; stopped (and checked) at the end."""
    root = tmp_path_factory.mktemp("e2e")
    config_dir, data_dir = root / "configs", root / "data"
    shutil.copytree(REPO_ROOT / "configs", config_dir)
    data_dir.mkdir()
    project = Project.load(ProjectPaths(config_dir, data_dir))
    log_path = root / "dagster-dev.log"
    started = time.monotonic()
    try:
        dagster = start_loglens_dev(
            dagster_home=root / "dagster_home",
            config_dir=config_dir,
            data_dir=data_dir,
            log_path=log_path,
        )
    finally:
        _keep(log_path, "dagster-dev.log")
    print(f"\n[e2e] loglens dev ready on port {dagster.port} in {time.monotonic() - started:.1f} s")
    try:
        yield LiveProject(dagster, project, root)
    finally:
        leftovers = dagster.stop()
        _keep(log_path, "dagster-dev.log")
    print(f"\n[e2e] process group {dagster.pgid} stopped in {dagster.stop_seconds:.1f} s")
    assert leftovers == [], dagster.describe(
        f"processes of group {dagster.pgid} still alive after SIGTERM+SIGKILL:\n"
        + "\n".join(leftovers)
    )


def _keep(path: Path, name: str) -> None:
    """Copy a file into artifacts/e2e/ (git-ignored, kept by CI)."""
    if path.exists():
        E2E_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, E2E_ARTIFACTS / name)


# --- file drop -> sensor -> run -> warehouse ----------------------------------------------------


def app_log_dir(project: Project) -> tuple[Path, str]:
    """The folder and file suffix of the `app` source's glob (`app/*.jsonl`)."""
    source = next(s for s in project.config.sources if s.name == "app")
    assert source.format == "json", source
    glob = Path(source.glob)
    assert glob.name.startswith("*") and "*" not in str(glob.parent), glob
    return project.logs_dir / glob.parent, glob.name[1:]


def app_lines(start: int, count: int) -> list[str]:
    """`count` valid JSON log lines, numbered from `start`, one second apart."""
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return [
        json.dumps(
            {
                "ts": (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                "level": ("INFO", "WARN", "ERROR")[i % 3],
                "service": "checkout",
                "host": f"web-{i % 4}",
                "msg": f"e2e request {i}",
                "status": 500 if i % 3 == 2 else 200,
                "latency_ms": 10.0 + i % 50,
                "user_id": f"u{i % 17}",
                "http": {"method": "GET", "path": f"/cart/{i % 5}"},
            }
        )
        for i in range(start, start + count)
    ]


def drop_file(path: Path, lines: list[str]) -> float:
    """Write the file under a name the glob does not match, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(line + "\n" for line in lines))
    os.replace(partial, path)
    return time.time()


def append_lines(path: Path, lines: list[str]) -> float:
    """Append complete lines with one write, so the sensor never sees half a line."""
    with path.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return time.time()


def sensor_runs(dagster: LiveDagster) -> list[dict[str, Any]]:
    result = dagster.graphql(
        RUNS_QUERY,
        {
            "filter": {
                "pipelineName": JOB,
                "tags": [{"key": "dagster/sensor_name", "value": SENSOR}],
            }
        },
    )["runsOrError"]
    assert result["__typename"] == "Runs", result
    return result["results"]


def run_errors(dagster: LiveDagster, run_id: str) -> str:
    logs = dagster.graphql(RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
    events = logs.get("events") or []
    return (
        "\n".join(
            f"{e.get('stepKey')}: {e.get('message')}"
            for e in events
            if e.get("level") in ("ERROR", "CRITICAL")
        )
        or json.dumps(logs)[:2000]
    )


def wait_for_new_success(dagster: LiveDagster, seen: set[str]) -> tuple[dict[str, Any], float]:
    """The first run of the sensor not in `seen` that succeeds, and when it was seen succeeded.

    Fails at once when such a run fails, with the run's error events and the processes' output.
    """
    deadline = time.monotonic() + RUN_TIMEOUT_S
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [r for r in sensor_runs(dagster) if r["runId"] not in seen]
        for run in runs:
            if run["status"] in ("FAILURE", "CANCELED"):
                pytest.fail(
                    dagster.describe(
                        f"{JOB} run {run['runId']} ended {run['status']}:\n"
                        f"{run_errors(dagster, run['runId'])}"
                    )
                )
        done = [r for r in runs if r["status"] == "SUCCESS"]
        if done:
            return min(done, key=lambda r: r["creationTime"]), time.time()
        time.sleep(0.5)
    pytest.fail(
        dagster.describe(
            f"no new successful {JOB} run within {RUN_TIMEOUT_S:.0f} s; new runs: {runs}\n"
            f"latest runs of the instance:\n{all_runs(dagster)}"
        )
    )


def all_runs(dagster: LiveDagster) -> str:
    """Every recent run (any job), to see what a queued run waits for."""
    results = dagster.graphql(ALL_RUNS_QUERY)["runsOrError"].get("results", [])
    return "\n".join(
        f"{r['runId']} {r['jobName']} {r['status']} created {r['creationTime']:.0f} "
        + ",".join(t["value"] for t in r["tags"] if t["key"] == "dagster/sensor_name")
        for r in results
    )


def warehouse_rows(project: Project, sql: str, params: list[Any]) -> list[tuple]:
    """Query the warehouse read-only and close it at once; retry while a run holds the lock."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with duckdb.connect(str(project.warehouse_path), read_only=True) as conn:
                return conn.execute(sql, params).fetchall()
        except duckdb.IOException:  # a writer (run worker) has the file open
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def file_counts(project: Project, name: str) -> dict[str, Any]:
    """Events, quarantined lines and offset bookkeeping of the file named `name`."""
    suffix = "/" + name
    events, distinct_offsets, min_msg, max_msg = warehouse_rows(
        project,
        """
        SELECT count(*), count(DISTINCT byte_offset), min(message), max(message)
        FROM raw.events WHERE suffix(file_path, ?)""",
        [suffix],
    )[0]
    quarantined = sorted(
        r[0]
        for r in warehouse_rows(
            project, "SELECT raw_line FROM raw.quarantine WHERE suffix(file_path, ?)", [suffix]
        )
    )
    offsets = warehouse_rows(
        project,
        """
        SELECT committed_offset, lines, events, quarantined FROM raw.file_offsets
        WHERE suffix(path, ?)""",
        [suffix],
    )
    total = warehouse_rows(project, "SELECT count(*) FROM raw.events", [])[0][0]
    return {
        "events": events,
        "distinct_offsets": distinct_offsets,
        "quarantined": quarantined,
        "offsets": offsets,
        "all_events": total,
        "messages": (min_msg, max_msg),
    }


def materialization(dagster: LiveDagster, run_id: str) -> dict[str, int]:
    """Int metadata of the `raw/events` materialization recorded by run `run_id`."""
    asset = dagster.graphql(ASSET_QUERY, {"path": RAW_EVENTS_PATH})["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    assert JOB in asset["definition"]["jobNames"], asset["definition"]
    mats = [m for m in asset["assetMaterializations"] if m["runId"] == run_id]
    assert mats, f"no materialization of raw/events by run {run_id}: {asset}"
    return {e["label"]: int(e["intRepr"]) for e in mats[0]["metadataEntries"] if "intRepr" in e}


def latency_breakdown(run: dict[str, Any], dropped: float, seen_at: float) -> dict[str, float]:
    return {
        "drop_to_run_created_s": round(run["creationTime"] - dropped, 2),
        "created_to_started_s": round(run["startTime"] - run["creationTime"], 2),
        "started_to_finished_s": round(run["endTime"] - run["startTime"], 2),
        "drop_to_success_s": round(run["endTime"] - dropped, 2),
        "drop_to_success_observed_s": round(seen_at - dropped, 2),
    }


def test_dropped_file_is_ingested_by_sensor_run(live: LiveProject, record_property) -> None:
    dagster, project = live.dagster, live.project
    folder, suffix = app_log_dir(project)
    path = folder / f"e2e-drop{suffix}"
    seen = {r["runId"] for r in sensor_runs(dagster)}

    # 500 valid lines with 2 malformed ones in between.
    lines = app_lines(0, 500)
    lines.insert(100, MALFORMED[0])
    lines.insert(400, MALFORMED[1])
    dropped = drop_file(path, lines)
    run, seen_at = wait_for_new_success(dagster, seen)
    first = latency_breakdown(run, dropped, seen_at)
    seen.add(run["runId"])

    counts = file_counts(project, path.name)
    assert counts["events"] == 500, counts
    assert counts["distinct_offsets"] == 500, counts
    assert counts["quarantined"] == sorted(MALFORMED), counts
    assert counts["all_events"] == 500, counts
    assert counts["offsets"] == [(path.stat().st_size, 502, 500, 2)], counts
    meta = materialization(dagster, run["runId"])
    assert (meta.get("lines"), meta.get("events"), meta.get("quarantined")) == (502, 500, 2), meta

    # 100 more lines: the next run reads only them.
    appended = append_lines(path, app_lines(500, 100))
    run2, seen_at2 = wait_for_new_success(dagster, seen)
    second = latency_breakdown(run2, appended, seen_at2)

    counts = file_counts(project, path.name)
    assert counts["events"] == 600, counts
    assert counts["distinct_offsets"] == 600, counts
    assert counts["quarantined"] == sorted(MALFORMED), counts
    assert counts["all_events"] == 600, counts
    assert counts["offsets"] == [(path.stat().st_size, 602, 600, 2)], counts
    meta = materialization(dagster, run2["runId"])
    assert (meta.get("lines"), meta.get("events"), meta.get("quarantined")) == (100, 100, 0), meta

    # The daemon handed both runs to LogLens run workers (instance/test_launcher.py checks that
    # a run goes to the worker started before it).
    workers = {
        r["runId"]: identity_pid(tags[WORKER_TAG])
        for r in sensor_runs(dagster)
        if WORKER_TAG in (tags := {t["key"]: t["value"] for t in r["tags"]})
    }
    assert {run["runId"], run2["runId"]} <= set(workers), workers
    assert workers[run["runId"]] != workers[run2["runId"]], workers

    # The sensor exists, targets the job and is running; the asset has materializations.
    sensor = dagster.graphql(
        SENSOR_QUERY,
        {
            "selector": {
                "repositoryLocationName": dagster.location,
                "repositoryName": dagster.repository,
                "sensorName": SENSOR,
            }
        },
    )["sensorOrError"]
    assert sensor["__typename"] == "Sensor", sensor
    assert sensor["sensorState"]["status"] == "RUNNING", sensor
    assert JOB in [t["pipelineName"] for t in sensor["targets"]], sensor

    latencies = {"first_drop": first, "append": second}
    record_property("latencies", json.dumps(latencies))
    E2E_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (E2E_ARTIFACTS / "latency.json").write_text(json.dumps(latencies, indent=2) + "\n")
    print(f"\n[e2e] file drop -> run success: {json.dumps(latencies)}")


# --- an incident: sensor ingestion, a backfill run by the daemon, a WARN check, BI rows ----------

INCIDENT_METRIC = "error_rate"  # robust, direction up: a 5xx share of 0.35 against about 0.01
SAMPLE_HOURS = 4
BACKFILL_TIMEOUT_S = 300.0

LAUNCH_BACKFILL = """
mutation E2EBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_QUERY = """
query E2EBackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      runs(limit: 50) { runId status jobName tags { key value } }
    }
    ... on Error { message }
  }
}
"""

PARTITIONS_QUERY = """
query E2EPartitions($path: [String!]!, $partitions: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
    ... on Error { message }
  }
}
"""

CHECK_QUERY = """
query E2ECheck($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 20) {
    runId
    status
    evaluation { severity success description }
  }
}
"""


@dataclass
class IncidentScenario:
    manifest: SampleManifest
    partitions: list[str]  # the sample's hours, oldest first
    incident_partition: str
    ingested_s: float  # files in place -> every line in the warehouse
    backfill_id: str
    backfill_s: float  # backfill launched -> completed
    backfill_runs: list[dict[str, Any]]


def metric_asset_paths(project: Project) -> list[list[str]]:
    return [[area, m.spec.name] for area in ("metrics", "anomalies") for m in project.metrics]


def wait_for_all_lines(dagster: LiveDagster, project: Project, files: list[str], total: int):
    """Poll raw.file_offsets until the files' committed lines reach `total` (exactly)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    lines = 0
    while time.monotonic() < deadline:
        for run in sensor_runs(dagster):
            if run["status"] in ("FAILURE", "CANCELED"):
                pytest.fail(
                    dagster.describe(f"ingest run failed: {run_errors(dagster, run['runId'])}")
                )
        lines = warehouse_rows(
            project,
            "SELECT coalesce(sum(lines), 0) FROM raw.file_offsets WHERE list_contains(?, path)",
            [files],
        )[0][0]
        if lines >= total:
            return lines
        time.sleep(1.0)
    pytest.fail(dagster.describe(f"{lines} of {total} sample lines ingested within the timeout"))


def wait_for_backfill(dagster: LiveDagster, backfill_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    backfill: dict[str, Any] = {}
    while time.monotonic() < deadline:
        backfill = dagster.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in ("COMPLETED_SUCCESS", "COMPLETED"):
            return backfill
        failed = [r for r in backfill["runs"] if r["status"] in ("FAILURE", "CANCELED")]
        if failed or backfill["status"] in ("FAILED", "COMPLETED_FAILED", "CANCELED"):
            errors = "\n".join(run_errors(dagster, r["runId"]) for r in failed)
            pytest.fail(
                dagster.describe(f"backfill {backfill_id} ended badly: {backfill}\n{errors}")
            )
        time.sleep(1.0)
    pytest.fail(dagster.describe(f"backfill {backfill_id} not done in time: {backfill}"))


@pytest.fixture(scope="module")
def incident(live: LiveProject) -> IncidentScenario:
    """Sample logs of 4 closed hours with a payments outage in the last one, dropped into the
    watched folder; the sensor ingests them, then a backfill of every metric and anomaly asset
    over those hours (what "Materialize" on the asset graph launches) is run by the daemon.

    The hours end 3 hours before now: older than the automation's latest window, so only the
    backfill materializes them, whatever minute the test starts at.
    """
    dagster, project = live.dagster, live.project
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = top - timedelta(hours=SAMPLE_HOURS + 3)
    last = start + timedelta(hours=SAMPLE_HOURS - 1)
    outage = Incident("payments", last + timedelta(minutes=15), last + timedelta(minutes=45))
    staging = live.root / "incident-staging"
    manifest = generate_sample_logs(
        staging, start=start, hours=SAMPLE_HOURS, lines_per_hour=3000, incident=outage
    )
    targets = []
    for entry in manifest.files:  # whole files appear at once, like a log shipper's rename
        target = project.logs_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / entry.path, target)
        targets.append(str(target))
    placed = time.monotonic()
    lines = wait_for_all_lines(dagster, project, targets, manifest.total_lines)
    assert lines == manifest.total_lines
    ingested_s = time.monotonic() - placed

    partitions = [partition_key(start + timedelta(hours=i)) for i in range(SAMPLE_HOURS)]
    launched = dagster.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "partitionNames": partitions,
                "assetSelection": [{"path": path} for path in metric_asset_paths(project)],
                "tags": [{"key": "loglens/trigger", "value": "e2e"}],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    began = time.monotonic()
    backfill = wait_for_backfill(dagster, launched["backfillId"])
    return IncidentScenario(
        manifest,
        partitions,
        partition_key(last),
        round(ingested_s, 1),
        launched["backfillId"],
        round(time.monotonic() - began, 1),
        backfill["runs"],
    )


def test_every_metric_and_anomaly_partition_of_the_incident_hours_succeeded(
    live: LiveProject, incident: IncidentScenario
) -> None:
    dagster = live.dagster
    assert incident.backfill_runs, "the backfill launched no run"
    assert all(r["status"] == "SUCCESS" for r in incident.backfill_runs), incident.backfill_runs
    for path in metric_asset_paths(live.project):
        asset = dagster.graphql(
            PARTITIONS_QUERY, {"path": path, "partitions": incident.partitions}
        )["assetOrError"]
        assert asset["__typename"] == "Asset", (path, asset)
        done = {m["partition"] for m in asset["assetMaterializations"]}
        assert done == set(incident.partitions), (path, sorted(done))
    print(
        f"\n[e2e] incident sample: {incident.manifest.total_lines} lines ingested in "
        f"{incident.ingested_s} s; backfill of {len(metric_asset_paths(live.project))} assets x "
        f"{len(incident.partitions)} hours in {incident.backfill_s} s "
        f"({len(incident.backfill_runs)} runs)"
    )


def test_the_incident_fails_the_anomaly_check_with_a_warning(
    live: LiveProject, incident: IncidentScenario
) -> None:
    backfill_runs = {r["runId"] for r in incident.backfill_runs}
    executions = live.dagster.graphql(
        CHECK_QUERY, {"path": ["anomalies", INCIDENT_METRIC], "check": "no_anomalies"}
    )["assetCheckExecutions"]
    ours = [e for e in executions if e["runId"] in backfill_runs]
    assert ours, executions
    evaluation = ours[0]["evaluation"]
    assert ours[0]["status"] == "FAILED", ours[0]
    assert (evaluation["severity"], evaluation["success"]) == ("WARN", False), evaluation
    assert "outside the expected band" in evaluation["description"], evaluation


def reader_rows(project: Project, sql: str, params: list[Any], timeout: float = 300.0):
    """Rows from the BI reader copy once they are there.

    The automation sensor republishes it once no upstream run is in progress; on a loaded
    machine it can queue behind the hourly schedule's run and the alerts run (pool limit 1).
    """
    deadline = time.monotonic() + timeout
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        if project.reader_path.exists():
            try:
                with duckdb.connect(str(project.reader_path), read_only=True) as conn:
                    rows = conn.execute(sql, params).fetchall()
            except duckdb.CatalogException:  # not published since the tables appeared
                rows = []
            if rows:
                return rows
        time.sleep(1.0)
    return rows


def test_the_incident_anomaly_rows_are_queryable_in_the_reader_copy(
    live: LiveProject, incident: IncidentScenario
) -> None:
    outage = incident.manifest.incident
    assert outage is not None
    rows = reader_rows(
        live.project,
        f"""SELECT bucket_start, value, expected, score FROM anomalies.{INCIDENT_METRIC}
            WHERE service = 'payments' AND is_anomaly AND bucket_start >= ? AND bucket_start < ?
            ORDER BY bucket_start""",
        [outage.start.replace(tzinfo=None), outage.end.replace(tzinfo=None)],
    )
    assert rows, live.dagster.describe(
        f"no anomaly rows for payments in {live.project.reader_path}; runs:\n"
        + all_runs(live.dagster)
    )
    # Most of the outage's six 5-minute buckets are flagged, each far above what was expected.
    # (Not asserted: that nothing else is flagged. With ~30 payments requests per bucket, one
    # stray 5xx against a baseline of zeros can score high too.)
    assert len(rows) >= 3, rows
    assert all(value > 0.1 and expected < 0.05 for _, value, expected, _ in rows), rows


# --- the UI in a real browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


def screenshot(chromium: str, url: str, target: Path, work: Path, attempts: int = 3) -> Path:
    """A 1600x1000 PNG of `url`; retried with more virtual time while it is (nearly) blank."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    for attempt in range(attempts):
        result = run_chromium(
            chromium,
            url,
            [
                f"--screenshot={target}",
                "--window-size=1600,1000",
                f"--virtual-time-budget={15000 + 10000 * attempt}",
                "--hide-scrollbars",
            ],
            profile_dir=work / f"profile-{uuid.uuid4().hex[:12]}",
            work_dir=work,
        )
        assert result.leftovers == [], result.leftovers
        if target.exists() and target.stat().st_size > 10_000:
            break
    assert target.exists(), f"no screenshot of {url}: chromium exited {result.returncode}"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", target
    assert target.stat().st_size > 10_000, f"{target} is only {target.stat().st_size} bytes"
    return target


def dump_dom(chromium: str, url: str, expected: list[str], work: Path, attempts: int = 3) -> str:
    """The rendered DOM of `url`, retried while it lacks any of `expected`.

    The window is tall because Dagster's lists are virtualized: rows below it are not rendered.
    """
    dom = ""
    for attempt in range(attempts):
        result = run_chromium(
            chromium,
            url,
            [
                "--dump-dom",
                "--window-size=1600,3000",
                f"--virtual-time-budget={15000 + 10000 * attempt}",
            ],
            profile_dir=work / f"profile-{uuid.uuid4().hex[:12]}",
            work_dir=work,
        )
        assert result.leftovers == [], result.leftovers
        dom = result.stdout.decode(errors="replace")
        if all(text in dom for text in expected):
            return dom
    missing = [text for text in expected if text not in dom]
    saved = work / f"dom-{uuid.uuid4().hex[:12]}.html"
    saved.write_text(dom)
    pytest.fail(f"{url}: rendered DOM ({len(dom)} chars, saved to {saved}) lacks {missing}")


def test_ui_renders_assets_and_sensor(
    live: LiveProject, chromium: str, incident: IncidentScenario
) -> None:
    base, work = live.dagster.base_url, live.root / "chromium"
    metric_page = f"{base}/assets/metrics/{INCIDENT_METRIC}"
    partition = f"?view=partitions&partition={incident.incident_partition}"
    metric_links = [f'href="/assets/metrics/{m.spec.name}"' for m in live.project.metrics]
    with ThreadPoolExecutor(max_workers=2) as pool:  # browsers mostly wait on the server
        shots = [
            # Global asset lineage (the asset graph, by group), and the raw/events asset page.
            (f"{base}/asset-groups", "asset-lineage.png"),
            (f"{base}/assets/raw/events", "asset-raw-events.png"),
            # The incident's hour of the metric: its materialization, chart and preview.
            (metric_page + partition, f"metric-{INCIDENT_METRIC}-partition.png"),
            # The anomaly asset's checks tab, where the WARN for the incident shows.
            (f"{base}/assets/anomalies/{INCIDENT_METRIC}?view=checks", "anomaly-check.png"),
        ]
        shot_jobs = [
            pool.submit(screenshot, chromium, url, SCREENSHOTS / name, work) for url, name in shots
        ]
        # Automation lists sensors and schedules; the catalog's folders list the assets.
        automation = pool.submit(dump_dom, chromium, f"{base}/automation", [f">{SENSOR}<"], work)
        catalog = pool.submit(
            dump_dom, chromium, f"{base}/assets/raw", ['href="/assets/raw/events"'], work
        )
        metrics = pool.submit(dump_dom, chromium, f"{base}/assets/metrics", metric_links, work)
        partition_dom = pool.submit(
            dump_dom, chromium, metric_page + partition, [incident.incident_partition], work
        )
        checks = pool.submit(
            dump_dom,
            chromium,
            f"{base}/assets/anomalies/{INCIDENT_METRIC}?view=checks",
            ["no_anomalies"],
            work,
        )
        for done in (*shot_jobs, catalog, metrics, partition_dom, checks):
            done.result()
        assert f"/sensors/{SENSOR}" in automation.result()
