"""Child process for the SIGKILL test: ingests every watched file of the project given by the
environment (LOGLENS_CONFIG_DIR, LOGLENS_DATA_DIR) and prints a line after each commit."""

from __future__ import annotations

from datetime import datetime

from loglens_pipeline.defs.project import Project
from loglens_pipeline.ingest.discovery import all_source_files
from loglens_pipeline.ingest.identity import stat_file
from loglens_pipeline.ingest.ingestor import ingest_files
from loglens_pipeline.warehouse.connection import connect
from loglens_pipeline.warehouse.schema import ensure_raw_schema


def main() -> None:
    project = Project.load()
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [
            (source, state)
            for source, path in all_source_files(project.logs_dir, project.config.sources)
            if (state := stat_file(path, source.name)) is not None
        ]
        ingest_files(
            conn,
            work,
            project.config.ingest,
            ingested_at=datetime(2026, 11, 26),
            after_commit=lambda result: print(f"{result.path} {result.end_offset}", flush=True),
        )
    print("done", flush=True)


if __name__ == "__main__":
    main()
