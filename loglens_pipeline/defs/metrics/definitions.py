"""Everything the metrics area contributes: metric and anomaly assets, `metrics_job`, schedule."""

import dagster as dg
from dagster_duckdb_pandas import DuckDBPandasIOManager

from loglens_pipeline.defs.metrics.assets import IO_MANAGER_KEY
from loglens_pipeline.defs.metrics.hourly import build_hourly_assets
from loglens_pipeline.defs.metrics.schedules import build_hourly_schedule
from loglens_pipeline.defs.project import Project
from loglens_pipeline.warehouse.connection import connection_config

METRIC_GROUPS = ("metrics", "anomalies")


def metrics_definitions(project: Project, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    """An asset per metric and per anomaly score, plus the job and schedule that drive them."""
    assets = [build_hourly_assets(project, partitions)] if project.metrics else []
    selection = dg.AssetSelection.groups(*METRIC_GROUPS)
    metrics_job = dg.define_asset_job(
        "metrics_job",
        selection=selection,
        partitions_def=partitions,
        description="Metrics and anomaly scores for a partition or a range of hours (one run).",
        tags={"loglens/area": "metrics"},
    )
    return dg.Definitions(
        assets=assets,
        jobs=[metrics_job],
        schedules=[build_hourly_schedule(project, metrics_job)],
        resources={
            IO_MANAGER_KEY: DuckDBPandasIOManager(
                database=str(project.warehouse_path),
                connection_config=connection_config(project.config.warehouse),
            )
        },
    )
