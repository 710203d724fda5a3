"""`warehouse/reader_copy`: analytics views rebuilt, then the warehouse published for readers."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.anomalies.assets import anomaly_key
from loglens_pipeline.defs.automation import deps_updated_since_requested
from loglens_pipeline.defs.ingest.assets import RAW_EVENTS
from loglens_pipeline.defs.metrics.assets import metric_key, recent_hours
from loglens_pipeline.defs.project import OWNER, WAREHOUSE_POOL, Project, code_version
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.defs.warehouse.retention import (
    RETENTION,
    RETENTION_JOB,
    build_retention_asset,
    retention_schedule,
)
from loglens_pipeline.warehouse.analytics import (
    INGEST_HEALTH,
    QUARANTINE_BY_REASON,
    build_analytics,
)
from loglens_pipeline.warehouse.snapshot import publish_reader_copy

READER_COPY = dg.AssetKey(["warehouse", "reader_copy"])


def publish_condition(project: Project) -> dg.AutomationCondition:
    """Publish after any upstream table changed, once no upstream run is in progress.

    New raw events of a recent hour make automation request that hour's metrics in the same
    tick. Publishing then would copy the warehouse without the new metric rows and hold the
    warehouse pool the metrics run waits for, so the copy skips that tick; on the next ones the
    metrics run is in progress, and the copy is published once, after it. (Only the stateless
    part of the metrics' condition is repeated here: a `since` nested under `any_deps_match`
    keeps its state per dependency and never resets.)
    """
    # Metrics only: their upstream is ingestion. An anomaly's upstream is its metric, updated
    # by the run that also scored it, which is no reason to wait.
    metrics_requested_now = (
        dg.AutomationCondition.any_deps_match(
            recent_hours(project) & dg.AutomationCondition.any_deps_updated()
        )
        .allow(dg.AssetSelection.groups("metrics"))
        .with_label("recent hours' metrics requested now")
    )
    return (
        deps_updated_since_requested()
        & ~metrics_requested_now
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after warehouse changes")


def build_reader_copy_asset(project: Project, upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    """The asset that keeps the BI reader copy at most one run behind the warehouse."""

    @dg.asset(
        key=READER_COPY,
        deps=upstream,
        group_name="warehouse",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        automation_condition=publish_condition(project),
        owners=[OWNER],
        tags={"area": "warehouse", "audience": "bi"},
        # The views it builds: the analytics SQL and the metrics they cover.
        code_version=code_version(
            INGEST_HEALTH, QUARANTINE_BY_REASON, *(m.code_version for m in project.metrics)
        ),
        description=(
            f"Read-only copy of the warehouse for BI tools at `{project.reader_path}`. Rebuilds "
            "the `analytics` views (metric_points, metric_catalog, ingest_health, "
            "quarantine_by_reason), checkpoints, copies and atomically renames, so readers never "
            "block the pipeline and always see a consistent state."
        ),
    )
    def reader_copy(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        with warehouse_session(project, warehouse) as conn:
            build_analytics(conn, list(project.metrics))
            publication = publish_reader_copy(conn, project.warehouse_path, project.reader_path)
        context.log.info(
            f"published {publication.bytes:,} bytes to {publication.path} in {publication.seconds:.2f}s"
        )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(publication.path)),
                "bytes": dg.MetadataValue.int(publication.bytes),
                "publish_seconds": dg.MetadataValue.float(round(publication.seconds, 3)),
                "connect": dg.MetadataValue.md(
                    f"```\nduckdb -readonly {publication.path}\n"
                    f"duckdb:///{publication.path}?access_mode=read_only   # SQLAlchemy / Superset\n```"
                ),
            }
        )

    return reader_copy


def warehouse_definitions(project: Project) -> dg.Definitions:
    """The reader copy and retention assets, `publish_reader_job`, the retention schedule."""
    upstream = [
        RAW_EVENTS,
        RETENTION,
        *(metric_key(m.spec.name) for m in project.metrics),
        *(anomaly_key(m.spec.name) for m in project.metrics),
    ]
    job = dg.define_asset_job(
        "publish_reader_job",
        selection=dg.AssetSelection.assets(READER_COPY),
        description="Rebuild the analytics views and publish the reader copy now.",
    )
    return dg.Definitions(
        assets=[build_reader_copy_asset(project, upstream), build_retention_asset(project)],
        jobs=[job, RETENTION_JOB],
        schedules=[retention_schedule()],
    )
