"""`hourly_metrics_schedule`: metrics (and their anomalies) for the last closed hour."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.defs.project import Project


def build_hourly_schedule(
    project: Project, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """Runs once an hour, after the allowed lateness, for the hour that closed before it."""
    lateness = timedelta(minutes=project.config.partitions.allowed_lateness_minutes)

    @dg.schedule(
        name="hourly_metrics_schedule",
        job=job,
        cron_schedule=f"{int(lateness.total_seconds() // 60) % 60} * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every hour, once the allowed lateness "
            f"({project.config.partitions.allowed_lateness_minutes} min) has passed, materializes "
            "all metrics (and anomaly scores) for the last closed hour."
        ),
    )
    def hourly_metrics_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        ready = context.scheduled_execution_time - lateness
        hour = ready.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        key = partition_key(hour)
        return dg.RunRequest(run_key=key, partition_key=key, tags={"loglens/trigger": "schedule"})

    return hourly_metrics_schedule
