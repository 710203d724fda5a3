"""`warehouse/retention`: daily deletion of expired rows, never under a running backfill."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.partitions import partition_hour
from loglens_pipeline.defs.project import OWNER, WAREHOUSE_POOL, Project, code_version
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.warehouse.retention import RetentionCutoffs, apply_retention

RETENTION = dg.AssetKey(["warehouse", "retention"])
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def earliest_hour_in_use(instance: dg.DagsterInstance, own_run_id: str) -> datetime | None:
    """The first hour any queued or running partitioned run works on (its data must stay)."""
    hours = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE)):
        if run.run_id == own_run_id:
            continue
        key = run.tags.get("dagster/asset_partition_range_start") or run.tags.get(
            "dagster/partition"
        )
        if key:
            try:
                hours.append(partition_hour(key))
            except ValueError:
                continue
    return min(hours) if hours else None


def build_retention_asset(project: Project) -> dg.AssetsDefinition:
    keep = project.config.retention

    @dg.asset(
        key=RETENTION,
        group_name="warehouse",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        owners=[OWNER],
        tags={"area": "warehouse"},
        code_version=code_version(keep.model_dump_json()),
        description=(
            f"Deletes raw events and quarantined lines older than {keep.raw_days} days, metric "
            f"rows older than {keep.metrics_days} days and anomaly rows older than "
            f"{keep.anomalies_days} days. File offsets are kept, so old files are never "
            "re-ingested. Rows an active backfill or partition run needs are kept."
        ),
    )
    def retention(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        now = datetime.now(UTC).replace(tzinfo=None)

        def cutoff(days: int | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        cutoffs = RetentionCutoffs(
            cutoff(keep.raw_days), cutoff(keep.metrics_days), cutoff(keep.anomalies_days)
        )
        in_use = earliest_hour_in_use(context.instance, context.run_id)
        if in_use is not None:
            # A backfill recomputing old hours reads raw events and the anomaly baseline before them.
            floor = in_use - timedelta(days=8)
            cutoffs = RetentionCutoffs(
                *(
                    None if c is None else min(c, floor)
                    for c in (cutoffs.raw, cutoffs.metrics, cutoffs.anomalies)
                )
            )
            context.log.info(f"an active run works from {in_use}: keeping rows from {floor} on")
        with warehouse_session(project, warehouse) as conn:
            deleted = apply_retention(conn, cutoffs)
        table = "| table | rows deleted |\n|---|---:|\n" + "".join(
            f"| {t} | {n:,} |\n" for t, n in deleted.items()
        )
        return dg.MaterializeResult(
            metadata={
                "rows_deleted": dg.MetadataValue.int(sum(deleted.values())),
                "per_table": dg.MetadataValue.md(table),
                "raw_cutoff": dg.MetadataValue.text(str(cutoffs.raw)),
                "metrics_cutoff": dg.MetadataValue.text(str(cutoffs.metrics)),
                "held_back_for_run_from": dg.MetadataValue.text(str(in_use) if in_use else "-"),
            }
        )

    return retention


RETENTION_JOB = dg.define_asset_job(
    "retention_job",
    selection=dg.AssetSelection.assets(RETENTION),
    description="Delete rows past their retention now.",
)


def retention_schedule() -> dg.ScheduleDefinition:
    """Daily retention at a quiet hour."""
    return dg.ScheduleDefinition(
        name="daily_retention_schedule",
        job=RETENTION_JOB,
        cron_schedule="30 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every day at 03:30 UTC, deletes rows past their retention (configs/loglens.yaml).",
    )
