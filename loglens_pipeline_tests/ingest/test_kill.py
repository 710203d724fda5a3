"""SIGKILL the ingesting process at random points, again and again; the re-runs must end with
exactly the warehouse of one clean run, and `lines == events + quarantined` for every file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.samples.generator import generate_sample_logs
from loglens_pipeline_tests.conftest import query
from loglens_pipeline_tests.ingest.test_ingestor import ingest_all, snapshot


def run_child(project, kill_after_commits: int | None, delay: float = 0.0) -> str:
    env = {
        **os.environ,
        "LOGLENS_CONFIG_DIR": str(project.paths.config_dir),
        "LOGLENS_DATA_DIR": str(project.paths.data_dir),
        "PYTHONPATH": str(REPO_ROOT),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "loglens_pipeline_tests.ingest.kill_target"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if kill_after_commits is None:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        return out
    seen = []
    for line in child.stdout:
        seen.append(line)
        if len(seen) >= kill_after_commits or line.startswith("done"):
            break
    time.sleep(delay)  # 0: between two chunks; a few ms: inside the next chunk's transaction
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    return "".join(seen)


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_a_clean_run(project):
    generate_sample_logs(
        project.logs_dir, start=datetime(2026, 11, 20, tzinfo=UTC), hours=6, lines_per_hour=6000
    )
    warehouse = project.config.warehouse.model_copy(update={"path": "warehouse/clean.duckdb"})
    clean = replace(project, config=project.config.model_copy(update={"warehouse": warehouse}))
    ingest_all(clean)

    rng = random.Random(20261126)
    killed_mid_way = 0
    for _ in range(8):
        # Each run resumes from the committed offsets; 64 KiB chunks commit every few ms.
        out = run_child(project, rng.randint(1, 25), delay=rng.choice([0.0, 0.002, 0.005]))
        killed_mid_way += "done" not in out
    run_child(project, None)

    assert killed_mid_way >= 6, "the kills must land while chunks were being committed"
    assert snapshot(project) == snapshot(clean)
    per_file = query(
        project,
        """SELECT o.lines, o.events, o.quarantined,
                  (SELECT count(*) FROM raw.events e WHERE e.file_id = o.file_id),
                  (SELECT count(*) FROM raw.quarantine q WHERE q.file_id = o.file_id)
           FROM raw.file_offsets o""",
    )
    assert len(per_file) == 6
    for lines, events, quarantined, event_rows, quarantine_rows in per_file:
        assert lines == events + quarantined and (events, quarantined) == (
            event_rows,
            quarantine_rows,
        )
