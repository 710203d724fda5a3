"""`log_file_sensor`: notices new and grown log files with filesystem calls only."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg

from loglens_pipeline.config.models import IngestConfig
from loglens_pipeline.defs.ingest.assets import FileRequest, IngestRunConfig
from loglens_pipeline.defs.project import Project
from loglens_pipeline.ingest.discovery import all_source_files
from loglens_pipeline.ingest.identity import FileState, stat_file
from loglens_pipeline.ingest.ingestor import is_idle


def change_mark(state: FileState, settings: IngestConfig, now: datetime) -> str:
    """What the cursor remembers of a file: its size on disk, and once it went idle.

    Any change of size requests a run (growth, truncation, a compressed copy); crossing the idle
    timeout requests one more, which reads an unterminated last line, only if there is one.
    """
    idle = not state.compressed and is_idle(state, settings, now) and not ends_with_newline(state)
    return f"{state.disk_size}{'+idle' if idle else ''}"


def ends_with_newline(state: FileState) -> bool:
    """Whether the file's last byte is a newline (one byte read; a vanished file counts as yes)."""
    try:
        with state.path.open("rb") as handle:
            handle.seek(max(state.disk_size - 1, 0))
            return handle.read(1) in (b"\n", b"")
    except OSError:
        return True


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
    settings = project.config.ingest
    limit = settings.max_files_per_run

    @dg.sensor(
        name="log_file_sensor",
        job=job,
        minimum_interval_seconds=project.config.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Watches {project.logs_dir} for new log files, bytes appended to known ones, "
            "rotated, truncated and compressed files "
            f"(sources: {', '.join(s.name for s in project.config.sources)}), and requests up to "
            f"{limit} files per tick, one ingestion run per source (tag loglens/source). "
            "Filesystem calls only: it never opens the warehouse. Cursor: size on disk per file (identity, device, inode)."
        ),
    )
    def log_file_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        if not project.logs_dir.is_dir():
            return dg.SensorResult(
                skip_reason=f"the watched folder {project.logs_dir} does not exist: create it, "
                "or set ingest.logs_dir in configs/loglens.yaml (or LOGLENS_DATA_DIR)"
            )
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = datetime.now(UTC).replace(tzinfo=None)
        found = [
            (name, state, change_mark(state, settings, now)) for name, state in scan_files(project)
        ]
        pending = [(name, s, mark) for name, s, mark in found if cursor.get(s.cursor_key) != mark]
        if not pending:
            return dg.SensorResult(skip_reason="no new bytes in watched files")
        batch = pending[:limit]
        # Forget files that are gone, so the cursor does not grow with history.
        present = {state.cursor_key for _, state, _ in found}
        known = {key: mark for key, mark in cursor.items() if key in present}
        known.update({state.cursor_key: mark for _, state, mark in batch})
        context.log.info(f"requesting ingestion of {len(batch)} of {len(pending)} pending files")
        return dg.SensorResult(
            run_requests=[
                _ingest_request(source, [(s, mark) for name, s, mark in batch if name == source])
                for source in sorted({name for name, _, _ in batch})
            ],
            cursor=json.dumps(known, sort_keys=True),
        )

    return log_file_sensor


def _ingest_request(source: str, files: list[tuple[FileState, str]]) -> dg.RunRequest:
    """One run per source, so the Runs page filters by the tag `loglens/source`."""
    run_key = hashlib.sha1(
        "\n".join(sorted(f"{state.cursor_key}:{mark}" for state, mark in files)).encode()
    ).hexdigest()
    requests = [FileRequest(source=source, path=str(state.path)) for state, _ in files]
    return dg.RunRequest(
        run_key=run_key,
        run_config=dg.RunConfig(ops={"raw__events": IngestRunConfig(files=requests)}),
        tags={"loglens/source": source, "loglens/files": str(len(files))},
    )
