"""The main job end to end on embedded defaults: sample logs -> Dagster runs -> warehouse summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loglens_pipeline.config import ProjectPaths
from loglens_pipeline.defs.partitions import closed_hours
from loglens_pipeline.defs.project import Project
from loglens_pipeline.instance import open_instance
from loglens_pipeline.runs import run_ingest, run_metrics_range, run_publish
from loglens_pipeline.samples.generator import SampleManifest, default_start, generate_sample_logs
from loglens_pipeline.warehouse.connection import connect
from loglens_pipeline.warehouse.summary import (
    MetricHighlight,
    WarehouseSummary,
    metric_highlights,
    summarize,
    top_anomalies,
)


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the sample it wrote, the runs it made and the warehouse totals."""

    manifest: SampleManifest
    run_ids: list[str]
    summary: WarehouseSummary
    metrics: list[MetricHighlight]
    anomalies: list[tuple]
    warehouse: Path
    reader: Path
    dagster_home: Path


def reset_demo_data(project: Project) -> list[Path]:
    """Remove the warehouse and previously generated samples so the demo starts clean."""
    removed = []
    for path in [project.warehouse_path, project.warehouse_path.with_suffix(".duckdb.wal")]:
        if path.exists():
            path.unlink()
            removed.append(path)
    for folder in ("app", "nginx"):
        target = project.logs_dir / folder
        for file in sorted(target.glob("*")) if target.is_dir() else []:
            file.unlink()
            removed.append(file)
    return removed


def run_demo(
    paths: ProjectPaths | None = None,
    *,
    hours: int = 24,
    lines_per_hour: int = 6000,
    reset: bool = True,
    log=print,
) -> DemoResult:
    """Generate sample logs, ingest them through the real definitions, and summarize."""
    from loglens_pipeline.definitions import build_definitions

    project = Project.load(paths)
    if reset:
        removed = reset_demo_data(project)
        if removed:
            log(f"removed {len(removed)} files of an earlier demo")
    log(f"generating {hours} hours of sample logs")
    start = default_start(datetime.now(UTC), hours=hours)
    manifest = generate_sample_logs(
        project.logs_dir, start=start, hours=hours, lines_per_hour=lines_per_hour
    )
    home = project.paths.data_dir / "dagster_home"
    instance = open_instance(home)
    defs = build_definitions(project)
    run_ids: list[str] = []

    def checked(result, what: str):
        run_ids.append(result.run_id)
        if not result.success:
            raise RuntimeError(f"the {what} run {result.run_id} failed; see it in the Dagster UI")
        return result

    log(f"ingesting {manifest.total_lines:,} lines from {len(manifest.files)} files (ingest_job)")
    checked(run_ingest(defs, instance, trigger="demo"), "ingestion")
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        ingested = summarize(conn)
    span = []
    if ingested.first_hour:
        count = int((ingested.last_hour - ingested.first_hour).total_seconds() // 3600) + 1
        span = [ingested.first_hour + timedelta(hours=i) for i in range(count)]
    hours_done = closed_hours(span, project.config.partitions)
    if hours_done and project.metrics:
        log(
            f"materializing {len(project.metrics)} metrics and their anomaly scores for "
            f"{len(hours_done)} hours (metrics_job, one single-run backfill)"
        )
        run = run_metrics_range(defs, instance, hours_done[0], hours_done[-1], trigger="demo")
        checked(run, "metrics")
    log("publishing the reader copy for BI tools (publish_reader_job)")
    checked(run_publish(defs, instance, trigger="demo"), "publishing")
    log("reading the summary from the reader copy")
    with connect(project.reader_path, project.config.warehouse, read_only=True) as conn:
        summary = summarize(conn)
        metrics = metric_highlights(conn, [(m.spec.name, m.group_columns) for m in project.metrics])
        anomalies = top_anomalies(conn)
    return DemoResult(
        manifest,
        run_ids,
        summary,
        metrics,
        anomalies,
        project.warehouse_path,
        project.reader_path,
        home,
    )
