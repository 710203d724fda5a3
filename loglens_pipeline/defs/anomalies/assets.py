"""One anomaly asset per metric: every bucket of its hours scored, and a check that warns."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from loglens_pipeline.anomaly.chart import chart_markdown
from loglens_pipeline.anomaly.frames import anomaly_columns, score_metric_range
from loglens_pipeline.defs.failures import explained_failures
from loglens_pipeline.defs.metrics.assets import IO_MANAGER_KEY, late_data_condition, metric_key
from loglens_pipeline.defs.partitions import run_hours
from loglens_pipeline.defs.project import WAREHOUSE_POOL, Project
from loglens_pipeline.metrics.compiler import CompiledMetric
from loglens_pipeline.warehouse.connection import use_utc
from loglens_pipeline.warehouse.schema import ensure_table

CHECK_NAME = "no_anomalies"


def anomaly_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["anomalies", name])


def _worst(frame: pd.DataFrame, groups: list[str], limit: int = 10) -> pd.DataFrame:
    flagged = frame[frame["is_anomaly"].fillna(False).astype(bool)]
    order = flagged["score"].abs().sort_values(ascending=False).index
    columns = ["bucket_start", *groups, "value", "expected", "score"]
    return flagged.loc[order, columns].head(limit)


def _last_day_chart(conn, metric: CompiledMetric, frame: pd.DataFrame, end) -> str:
    """The day up to `end` of the series with the strongest anomaly (or the first series)."""
    if frame.empty:
        return "_no points to chart_"
    groups = metric.group_columns
    row = frame.loc[frame["score"].abs().fillna(-1).idxmax()]
    series = frame
    label = metric.spec.name
    where, params = "bucket_start >= ? AND hour < ?", [end - timedelta(days=1), end]
    for group in groups:
        series = series[series[group] == row[group]]
        label += f" {group}={row[group]}"
        where += f' AND "{group}" IS NOT DISTINCT FROM ?'
        params.append(row[group])
    earlier = conn.execute(
        f'SELECT bucket_start, value, expected, lower, upper, is_anomaly FROM anomalies."{metric.spec.name}" '
        f"WHERE {where} AND bucket_start < ?",
        [*params, series["bucket_start"].min()],
    ).df()
    points = pd.concat([earlier, series[earlier.columns]], ignore_index=True)
    return chart_markdown(points, f"{label} (UTC)")


def build_anomaly_asset(
    project: Project, metric: CompiledMetric, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """Scores of one metric's points, replaced per partition like the metric itself."""
    spec = metric.spec
    key = anomaly_key(spec.name)
    anomaly = spec.anomaly
    columns = anomaly_columns(metric)

    @dg.asset(
        key=key,
        deps=[metric_key(spec.name)],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=late_data_condition(project),
        group_name="anomalies",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        io_manager_key=IO_MANAGER_KEY,
        code_version=f"{metric.code_version}",
        owners=[spec.owner],
        tags={"loglens/metric": spec.name, "loglens/detector": anomaly.method},
        description=(
            f"Anomaly scores of `metrics/{spec.name}`: every bucket with its expected value, band "
            f"({anomaly.method}, threshold {anomaly.threshold}, baseline {anomaly.baseline}, "
            f"direction {anomaly.direction}), score and flag. A point's baseline uses only "
            "earlier points, so backfills score history the way live runs did."
            + ("" if anomaly.enabled else " Scoring is disabled for this metric.")
        ),
        metadata={
            "partition_expr": "hour",
            "dagster/table_name": f"anomalies.{spec.name}",
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, kind) for name, kind in columns]
            ),
        },
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                description=f"Warns when a point of {spec.name} falls outside its expected band.",
            )
        ],
    )
    def anomaly_asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
        start, end = run_hours(context)
        with (
            explained_failures(project.warehouse_path, project.reader_path),
            warehouse.get_connection() as conn,
        ):
            use_utc(conn)
            if ensure_table(conn, "anomalies", spec.name, columns):
                context.log.warning(f"anomalies.{spec.name} had other columns: rebuilt")
            frame = score_metric_range(conn, metric, start, end)
            # Dagster copies a run's metadata to every partition it covers: a long backfill
            # would store the image once per hour, so charts come with runs of up to a day.
            chart = (
                _last_day_chart(conn, metric, frame, end)
                if end - start <= timedelta(days=1)
                else "_charts are drawn for runs of up to one day; see analytics.anomalies_"
            )
        worst = _worst(frame, metric.group_columns)
        flagged = int(frame["is_anomaly"].fillna(False).astype(bool).sum()) if len(frame) else 0
        preview = worst.to_markdown(index=False, floatfmt=".4g") if len(worst) else "_none_"
        yield dg.Output(
            frame,
            metadata={
                "points": dg.MetadataValue.int(len(frame)),
                "anomalies": dg.MetadataValue.int(flagged),
                "scored": dg.MetadataValue.int(
                    int(frame["detector"].isin(["zscore", "robust", "seasonal"]).sum())
                    if len(frame)
                    else 0
                ),
                "worst_points": dg.MetadataValue.md(preview),
                "chart": dg.MetadataValue.md(chart),
            },
        )
        yield dg.AssetCheckResult(
            check_name=CHECK_NAME,
            passed=flagged == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{flagged} of {len(frame)} points outside the expected band"
                if flagged
                else "every point within its expected band"
            ),
            metadata={
                "anomalies": dg.MetadataValue.int(flagged),
                "worst_points": dg.MetadataValue.md(preview),
                "hours": dg.MetadataValue.text(
                    f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
                ),
            },
        )

    return anomaly_asset
