"""Child process for the reader/writer test: appends logs and runs ingest, metrics and publish
through Dagster in a loop, then writes what it did as JSON to the path given."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline.defs.project import Project
from loglens_pipeline.instance import open_instance
from loglens_pipeline.runs import run_ingest, run_metrics_range, run_publish


def main(rounds: int, report: Path) -> None:
    project = Project.load()
    instance = open_instance(project.paths.data_dir / "dagster_home")
    defs = build_definitions(project)
    hour = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(
        hours=2
    )
    log = project.logs_dir / "app" / "live.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    runs, failures, published = 0, 0, []
    for i in range(rounds):
        with log.open("a") as handle:
            for j in range(500):
                t = hour + timedelta(seconds=(i * 500 + j) % 3600)
                handle.write(
                    json.dumps(
                        {
                            "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "level": "INFO",
                            "service": "cart",
                            "msg": "ok",
                            "status": 200 + (j % 7 == 0) * 300,
                            "latency_ms": 5.0 + j % 11,
                            "user_id": f"u{j}",
                        }
                    )
                    + "\n"
                )
        for result in (
            run_ingest(defs, instance, trigger="test"),
            run_metrics_range(defs, instance, hour, hour, trigger="test"),
            run_publish(defs, instance, trigger="test"),
        ):
            runs += 1
            failures += not result.success
        published.append(time.time())
    report.write_text(json.dumps({"runs": runs, "failures": failures, "published": published}))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
