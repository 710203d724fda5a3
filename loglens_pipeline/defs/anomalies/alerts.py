"""`anomaly_alert_sensor` and `alerts_job`: notify channels about new anomalies.

The sensor only reads Dagster's event log (new materializations of anomaly assets, by storage
id); it never opens the warehouse. It requests one `alerts_job` run per batch, whose op runs in
the warehouse pool, reads the scored points and lets `alerts.process_anomalies` group, cool
down, send and record them in `raw.alert_history`.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from loglens_pipeline.alerts import points_from_frame, process_anomalies
from loglens_pipeline.defs.anomalies.assets import anomaly_key
from loglens_pipeline.defs.partitions import partition_hour
from loglens_pipeline.defs.project import WAREHOUSE_POOL, Project
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.warehouse.analytics import existing_tables

# Alerts are for live data: a backfill of old hours records its anomalies, but pages nobody.
ALERT_MAX_AGE = timedelta(hours=24)


class AlertRunConfig(dg.Config):
    """Which metrics and hours (partition keys, inclusive) to look at."""

    metrics: list[str]
    first_hour: str
    last_hour: str


def build_alerts_job(project: Project) -> dg.JobDefinition:
    metrics = {m.spec.name: m for m in project.metrics}

    @dg.op(pool=WAREHOUSE_POOL, description="Send and record alerts for new anomalies.")
    def notify_anomalies(
        context: dg.OpExecutionContext, config: AlertRunConfig, warehouse: DuckDBResource
    ) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        first = max(partition_hour(config.first_hour), now - ALERT_MAX_AGE)
        last = partition_hour(config.last_hour) + timedelta(hours=1)
        points = []
        with warehouse_session(project, warehouse) as conn:
            present = existing_tables(conn, "anomalies")
            for name in config.metrics:
                if name not in metrics or name not in present:
                    continue
                frame: pd.DataFrame = conn.execute(
                    f'SELECT * FROM anomalies."{name}" WHERE hour >= ? AND hour < ? '
                    "ORDER BY bucket_start",
                    [first, last],
                ).df()
                points += points_from_frame(
                    frame, metric=name, group_columns=metrics[name].group_columns
                )
            report = process_anomalies(conn, points, project.config.alerts, now)
        summary = report.as_metadata()
        context.log.info(
            f"{len(points)} points checked: {summary['alert_notifications']} notifications, "
            f"{summary['alerts_suppressed']} suppressed, {summary['alert_deliveries_failed']} failed"
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey(["raw", "alert_history"]),
                metadata={k: v for k, v in summary.items() if v != ""},
            )
        )

    @dg.job(
        name="alerts_job", description="Notify channels about new anomalies (see docs/alerts.md)."
    )
    def alerts_job() -> None:
        notify_anomalies()

    return alerts_job


def build_alert_sensor(project: Project, job: dg.JobDefinition) -> dg.SensorDefinition:
    keys = {anomaly_key(m.spec.name): m.spec.name for m in project.metrics}

    @dg.sensor(
        name="anomaly_alert_sensor",
        job=job,
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After anomaly assets are materialized, requests an alerts_job run for the new "
            "partitions: grouped notifications with cooldown and recovery to the channels of "
            "configs/loglens.yaml (alerts). Reads Dagster's event log only."
        ),
    )
    def anomaly_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        after = int(context.cursor) if context.cursor else None
        newest, names, hours = after or 0, set(), []
        for key, name in keys.items():
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000
            ).records
            for record in records:
                newest = max(newest, record.storage_id)
                partition = record.asset_materialization.partition
                if partition:
                    names.add(name)
                    hours.append(partition)
        cursor = str(newest) if newest else None
        if not names:
            return dg.SensorResult(skip_reason="no new anomaly scores", cursor=cursor)
        if not project.config.alerts.channels:
            # Nothing would be sent or recorded, so no run: it would only hold the warehouse
            # pool. The cursor moves on: scores from before channels were configured never alert.
            return dg.SensorResult(
                skip_reason="new anomaly scores, but configs/loglens.yaml has no alerts.channels",
                cursor=cursor,
            )
        config = AlertRunConfig(metrics=sorted(names), first_hour=min(hours), last_hour=max(hours))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"alerts-{newest}",
                    run_config=dg.RunConfig(ops={"notify_anomalies": config}),
                    tags={"loglens/metrics": ",".join(sorted(names))[:200]},
                )
            ],
            cursor=str(newest),
        )

    return anomaly_alert_sensor
