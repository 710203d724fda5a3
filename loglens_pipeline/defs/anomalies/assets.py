"""One anomaly asset per metric: every bucket of its hours scored, and a check that warns."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd

from loglens_pipeline.anomaly.chart import chart_markdown
from loglens_pipeline.anomaly.frames import anomaly_columns, score_metric_range
from loglens_pipeline.defs.metrics.assets import IO_MANAGER_KEY, late_data_condition, metric_key
from loglens_pipeline.defs.project import Project
from loglens_pipeline.metrics.compiler import CompiledMetric
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


def anomaly_spec(project: Project, metric: CompiledMetric) -> dg.AssetSpec:
    """Scores of one metric's points, replaced per partition like the metric itself."""
    spec = metric.spec
    anomaly = spec.anomaly
    return dg.AssetSpec(
        key=anomaly_key(spec.name),
        deps=[metric_key(spec.name)],
        automation_condition=late_data_condition(project),
        group_name="anomalies",
        kinds={"duckdb"},
        code_version=f"{metric.code_version}",
        owners=[spec.owner],
        tags={"loglens/metric": spec.name, "loglens/detector": anomaly.method},
        skippable=True,
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
                columns=[dg.TableColumn(name, kind) for name, kind in anomaly_columns(metric)]
            ),
        },
    ).with_io_manager_key(IO_MANAGER_KEY)


def anomaly_check_spec(metric: CompiledMetric) -> dg.AssetCheckSpec:
    name = metric.spec.name
    return dg.AssetCheckSpec(
        CHECK_NAME,
        asset=anomaly_key(name),
        description=f"Warns when a point of {name} falls outside its expected band.",
    )


def anomaly_results(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    metric: CompiledMetric,
    start: datetime,
    end: datetime,
) -> tuple[dg.Output, dg.AssetCheckResult]:
    """Every point of the hours `[start, end)` scored, and the check's verdict on them."""
    spec = metric.spec
    key = anomaly_key(spec.name)
    if ensure_table(conn, "anomalies", spec.name, anomaly_columns(metric)):
        context.log.warning(f"anomalies.{spec.name} had other columns: rebuilt")
    frame = score_metric_range(conn, metric, start, end)
    flagged = int(frame["is_anomaly"].fillna(False).astype(bool).sum()) if len(frame) else 0
    # Dagster copies a run's metadata to every partition it covers: a long backfill would
    # store the image once per hour, so charts come with runs of up to a day, and only where
    # there is something to see (drawing one costs more than scoring the hour).
    if not flagged:
        chart = "_no point outside its band: no chart_"
    elif end - start <= timedelta(days=1):
        chart = _last_day_chart(conn, metric, frame, end)
    else:
        chart = "_charts are drawn for runs of up to one day; see analytics.anomalies_"
    worst = _worst(frame, metric.group_columns)
    preview = worst.to_markdown(index=False, floatfmt=".4g") if len(worst) else "_none_"
    output = dg.Output(
        frame,
        output_name=key.to_python_identifier(),
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
    check = dg.AssetCheckResult(
        asset_key=key,
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
            "hours": dg.MetadataValue.text(f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"),
        },
    )
    return output, check
