"""`hourly_metrics_schedule`: each metric (and its anomalies) for the last closed hour."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from loglens_pipeline.defs.anomalies.assets import anomaly_key
from loglens_pipeline.defs.metrics.assets import metric_key
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.defs.project import Project


def build_hourly_schedule(
    project: Project, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """Runs once an hour, after the allowed lateness, for the hour that closed before it."""
    lateness = timedelta(minutes=project.config.partitions.allowed_lateness_minutes)

    metrics = [m.spec.name for m in project.metrics]

    @dg.schedule(
        name="hourly_metrics_schedule",
        job=job,
        cron_schedule=f"{int(lateness.total_seconds() // 60) % 60} * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every hour, once the allowed lateness "
            f"({project.config.partitions.allowed_lateness_minutes} min) has passed, materializes "
            "each metric and its anomaly scores for the last closed hour: one run per metric, "
            "tagged loglens/metric, so runs filter by metric and one metric's failure leaves the "
            "others' hour done."
        ),
    )
    def hourly_metrics_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        ready = context.scheduled_execution_time - lateness
        hour = ready.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        key = partition_key(hour)
        return [
            dg.RunRequest(
                run_key=f"{key}:{name}",
                partition_key=key,
                asset_selection=[metric_key(name), anomaly_key(name)],
                tags={"loglens/trigger": "schedule", "loglens/metric": name},
            )
            for name in metrics
        ]

    return hourly_metrics_schedule
