"""One hourly-partitioned asset per metric in `configs/metrics.yaml`, stored by the DuckDB IO manager."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.failures import explained_failures
from loglens_pipeline.defs.ingest.assets import EVENT_HOURS
from loglens_pipeline.defs.partitions import run_hours
from loglens_pipeline.defs.project import WAREHOUSE_POOL, Project
from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.metrics.compute import compute_metric
from loglens_pipeline.warehouse.connection import use_utc
from loglens_pipeline.warehouse.schema import ensure_raw_schema, ensure_table

IO_MANAGER_KEY = "warehouse_io_manager"


def metric_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["metrics", name])


def late_data_condition(project: Project) -> dg.AutomationCondition:
    """Re-materialize a partition when an upstream partition changed, for recent hours only.

    Ingestion records a materialization of `raw/event_hours` for every hour it wrote events
    into; hours that closed within the allowed lateness are then recomputed automatically,
    older ones show as stale in the UI until a backfill.
    """
    lookback = timedelta(minutes=project.config.partitions.allowed_lateness_minutes, hours=1)
    return (
        dg.AutomationCondition.in_latest_time_window(lookback_delta=lookback)
        & dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("late data within the allowed lateness")


def _preview(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no rows_"
    return frame.head(10).to_markdown(index=False, floatfmt=".4g")


def build_metric_asset(
    project: Project, metric: CompiledMetric, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """The asset for one metric: one SQL statement per run over its hour(s) of events."""
    spec = metric.spec
    window = spec.window.size + (f" every {spec.window.step}" if spec.window.sliding else "")

    @dg.asset(
        key=metric_key(spec.name),
        deps=[EVENT_HOURS],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=late_data_condition(project),
        group_name="metrics",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        io_manager_key=IO_MANAGER_KEY,
        code_version=metric.code_version,
        owners=[spec.owner],
        tags={**spec.tags, "loglens/metric": spec.name},
        description=f"{spec.description}\n\n`{spec.aggregation}` over {window} windows"
        + (f" by {', '.join(spec.group_by)}" if spec.group_by else "")
        + f" from {', '.join(spec.source)}"
        + (f" where `{spec.filter}`" if spec.filter else "")
        + ".",
        metadata={
            "partition_expr": "hour",
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(c, t)
                    for c, t in zip(metric.columns, metric.column_types, strict=True)
                ]
            ),
            "dagster/table_name": f"metrics.{spec.name}",
        },
    )
    def metric_asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> pd.DataFrame:
        start, end = run_hours(context)
        project.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        with (
            explained_failures(project.warehouse_path, project.reader_path),
            warehouse.get_connection() as conn,
        ):
            use_utc(conn)
            ensure_raw_schema(conn)
            columns = list(zip(metric.columns, metric.column_types, strict=True))
            if ensure_table(conn, "metrics", spec.name, columns):
                context.log.warning(
                    f"metrics.{spec.name} had other columns (group_by changed): dropped; "
                    "re-materialize its other partitions (they show as stale)"
                )
            result = compute_metric(conn, metric, start, end)
        frame = result.frame
        context.add_output_metadata(
            {
                "hours": dg.MetadataValue.int(int((end - start).total_seconds() // 3600)),
                "buckets": dg.MetadataValue.int(
                    int(frame["bucket_end"].nunique()) if len(frame) else 0
                ),
                "groups": dg.MetadataValue.int(
                    int(frame[metric.group_columns].drop_duplicates().shape[0])
                    if metric.group_columns and len(frame)
                    else int(bool(len(frame)))
                ),
                "dropped_groups": dg.MetadataValue.int(result.dropped_groups),
                "dropped_examples": dg.MetadataValue.text(
                    ", ".join(result.dropped_examples) or "-"
                ),
                "preview": dg.MetadataValue.md(_preview(frame)),
            }
        )
        if result.dropped_groups:
            context.log.warning(
                f"max_groups={spec.max_groups} dropped {result.dropped_groups} groups, e.g. "
                f"{', '.join(result.dropped_examples)}"
            )
        return frame

    return metric_asset
