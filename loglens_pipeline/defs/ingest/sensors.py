"""`log_file_sensor`: notices new and grown log files with filesystem calls only."""

from __future__ import annotations

import hashlib
import json

import dagster as dg

from loglens_pipeline.defs.ingest.assets import FileRequest, IngestRunConfig
from loglens_pipeline.defs.project import Project
from loglens_pipeline.ingest.discovery import all_source_files
from loglens_pipeline.ingest.identity import FileState, stat_file


def scan_files(project: Project) -> list[tuple[str, FileState]]:
    """Every watched file that has an identity (a complete first line), oldest change first."""
    found = []
    for source, path in all_source_files(project.logs_dir, project.config.sources):
        state = stat_file(path, source.name)
        if state is not None:
            found.append((source.name, state))
    found.sort(key=lambda item: item[1].mtime_ns)
    return found


def build_log_file_sensor(project: Project, job) -> dg.SensorDefinition:
    """The sensor that turns new bytes under the logs folder into ingestion runs."""
    limit = project.config.ingest.max_files_per_run

    @dg.sensor(
        name="log_file_sensor",
        job=job,
        minimum_interval_seconds=project.config.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Watches {project.logs_dir} for new log files and bytes appended to known ones "
            f"(sources: {', '.join(s.name for s in project.config.sources)}), and requests one "
            f"ingestion run for up to {limit} files per tick. Filesystem calls only: it never "
            "opens the warehouse. Cursor: requested size per file identity."
        ),
    )
    def log_file_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        found = scan_files(project)
        pending = [(name, s) for name, s in found if s.size > cursor.get(s.file_id, 0)]
        if not pending:
            return dg.SensorResult(skip_reason="no new bytes in watched files")
        batch = pending[:limit]
        run_key = hashlib.sha1(
            "\n".join(sorted(f"{s.file_id}:{s.size}" for _, s in batch)).encode()
        ).hexdigest()
        run_config = dg.RunConfig(
            ops={
                "raw__events": IngestRunConfig(
                    files=[FileRequest(source=name, path=str(state.path)) for name, state in batch]
                )
            }
        )
        # Forget files that are gone, so the cursor does not grow with history.
        present = {state.file_id for _, state in found}
        known = {fid: size for fid, size in cursor.items() if fid in present}
        known.update({state.file_id: state.size for _, state in batch})
        sources = sorted({name for name, _ in batch})
        context.log.info(f"requesting ingestion of {len(batch)} of {len(pending)} pending files")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key,
                    run_config=run_config,
                    tags={"loglens/sources": ",".join(sources), "loglens/files": str(len(batch))},
                )
            ],
            cursor=json.dumps(known, sort_keys=True),
        )

    return log_file_sensor
