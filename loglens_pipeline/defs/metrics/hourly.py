"""One step materializes every selected metric and anomaly asset for the run's hours.

Each metric and each anomaly score is its own asset (own partitions, code version, check and
lineage), but they are computed together: a step per asset paid Dagster's step overhead and
opened the warehouse twice (asset and IO manager), which cost more than the SQL of the hour.
Inside the step one connection stays open, so the IO manager's connections reuse the open
database instead of loading and checkpointing the file for every output.
"""

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.anomalies.assets import (
    CHECK_NAME,
    anomaly_check_spec,
    anomaly_key,
    anomaly_results,
    anomaly_spec,
)
from loglens_pipeline.defs.failures import explain
from loglens_pipeline.defs.metrics.assets import metric_key, metric_output, metric_spec
from loglens_pipeline.defs.partitions import run_hours
from loglens_pipeline.defs.project import WAREHOUSE_POOL, Project
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.metrics.compute import computed_ahead

STEP_NAME = "metrics_and_anomalies"


def _affects_every_metric(exc: Exception) -> bool:
    """Errors of the warehouse itself (lock, disk, missing file) stop the step at once."""
    return isinstance(exc, OSError | duckdb.IOException)


def build_hourly_assets(
    project: Project, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """The metric and anomaly assets of every metric, materialized by one subsettable step."""
    metrics = project.metrics

    @dg.multi_asset(
        name=STEP_NAME,
        specs=[metric_spec(project, m) for m in metrics]
        + [anomaly_spec(project, m) for m in metrics],
        check_specs=[anomaly_check_spec(m) for m in metrics],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def metrics_and_anomalies(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
        start, end = run_hours(context)
        selected = context.selected_asset_keys
        checks = context.selected_asset_check_keys
        failed: dict[str, str] = {}
        computed = [m for m in metrics if metric_key(m.spec.name) in selected]
        with (
            warehouse_session(project, warehouse) as conn,
            computed_ahead(conn, computed, start, end) as metric_result,
        ):
            for metric in metrics:
                name = metric.spec.name
                # A metric scores its own points: its anomalies follow it in the same pass.
                try:
                    if metric_key(name) in selected:
                        result = metric_result(metric)
                        yield metric_output(context, conn, metric, start, end, result)
                    # The check can be executed alone (Checks tab): it scores without storing.
                    store = anomaly_key(name) in selected
                    check = dg.AssetCheckKey(anomaly_key(name), CHECK_NAME) in checks
                    if store or check:
                        output, verdict = anomaly_results(context, conn, metric, start, end)
                        if store:
                            yield output
                        if check:
                            yield verdict
                except Exception as exc:
                    if _affects_every_metric(exc):
                        raise
                    reason = explain(exc, project.warehouse_path, project.reader_path)
                    failed[name] = reason or f"{type(exc).__name__}: {exc}"
                    context.log.error(f"{name} failed, the other metrics go on: {failed[name]}")
        if failed:
            raise dg.Failure(
                description=f"{len(failed)} of {len(metrics)} metrics failed: "
                + "; ".join(f"{name}: {reason}" for name, reason in failed.items()),
                metadata={name: dg.MetadataValue.text(reason) for name, reason in failed.items()},
            )

    return metrics_and_anomalies
