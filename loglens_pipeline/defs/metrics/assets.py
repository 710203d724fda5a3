"""One hourly-partitioned asset per metric in `configs/metrics.yaml`, stored by the DuckDB IO manager."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd

from loglens_pipeline.defs.automation import deps_updated_since_requested
from loglens_pipeline.defs.ingest.assets import EVENT_HOURS
from loglens_pipeline.defs.project import Project
from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.metrics.compute import MetricResult
from loglens_pipeline.warehouse.schema import ensure_table

IO_MANAGER_KEY = "warehouse_io_manager"


def metric_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["metrics", name])


def recent_hours(project: Project) -> dg.AutomationCondition:
    """Partitions of hours that closed within the allowed lateness (late data is recomputed)."""
    lookback = timedelta(minutes=project.config.partitions.allowed_lateness_minutes, hours=1)
    return dg.AutomationCondition.in_latest_time_window(lookback_delta=lookback)


def late_data_condition(project: Project) -> dg.AutomationCondition:
    """Re-materialize a partition when an upstream partition changed, for recent hours only.

    Ingestion records a materialization of `raw/event_hours` for every hour it wrote events
    into; hours that closed within the allowed lateness are then recomputed automatically,
    older ones show as stale in the UI until a backfill.
    """
    return (
        recent_hours(project)
        & deps_updated_since_requested()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("late data within the allowed lateness")


def _preview(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no rows_"
    return frame.head(10).to_markdown(index=False, floatfmt=".4g")


def metric_spec(project: Project, metric: CompiledMetric) -> dg.AssetSpec:
    """What the UI shows of one metric's asset; `defs/metrics/hourly.py` materializes it."""
    spec = metric.spec
    window = spec.window.size + (f" every {spec.window.step}" if spec.window.sliding else "")
    return dg.AssetSpec(
        key=metric_key(spec.name),
        deps=[EVENT_HOURS],
        automation_condition=late_data_condition(project),
        group_name="metrics",
        kinds={"duckdb"},
        code_version=metric.code_version,
        owners=[spec.owner],
        tags={**spec.tags, "loglens/metric": spec.name},
        # A metric whose statement fails is left out of its run; the others are materialized.
        skippable=True,
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
    ).with_io_manager_key(IO_MANAGER_KEY)


def metric_output(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    metric: CompiledMetric,
    start: datetime,
    end: datetime,
    result: MetricResult,
) -> dg.Output:
    """One metric's rows over the hours `[start, end)` (`compute_metric`), for the IO manager."""
    spec = metric.spec
    columns = list(zip(metric.columns, metric.column_types, strict=True))
    if ensure_table(conn, "metrics", spec.name, columns):
        context.log.warning(
            f"metrics.{spec.name} had other columns (group_by changed): dropped; "
            "re-materialize its other partitions (they show as stale)"
        )
    frame = result.frame
    if result.dropped_groups:
        context.log.warning(
            f"{spec.name}: max_groups={spec.max_groups} dropped {result.dropped_groups} groups, "
            f"e.g. {', '.join(result.dropped_examples)}"
        )
    return dg.Output(
        frame,
        output_name=metric_key(spec.name).to_python_identifier(),
        metadata={
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
            "dropped_examples": dg.MetadataValue.text(", ".join(result.dropped_examples) or "-"),
            "preview": dg.MetadataValue.md(_preview(frame)),
        },
    )
