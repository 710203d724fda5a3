"""Child process for the orphaned-run test: an in-process ingest run whose step, holding the
`warehouse` pool slot, stops forever (until the test kills the process)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import loglens_pipeline.defs.ingest.assets as ingest_assets
from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.project import Project
from loglens_pipeline.instance import open_instance
from loglens_pipeline.runs import run_ingest


def main(ready: Path) -> None:
    def stalled(*_args, **_kwargs):
        ready.write_text("in the step")
        time.sleep(3600)

    ingest_assets.ingest_files = stalled
    project = Project.load()
    instance = open_instance(project.paths.data_dir / "dagster_home")
    run_ingest(build_definitions(project), instance, trigger="test")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
