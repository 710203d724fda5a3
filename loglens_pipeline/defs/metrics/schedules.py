"""`hourly_metrics_schedule`: metrics (and their anomalies) for the last closed hour."""

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
    selection = [metric_key(n) for n in metrics] + [anomaly_key(n) for n in metrics]

    @dg.schedule(
        name="hourly_metrics_schedule",
        job=job,
        cron_schedule=f"{int(lateness.total_seconds() // 60) % 60} * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every hour, once the allowed lateness "
            f"({project.config.partitions.allowed_lateness_minutes} min) has passed, materializes "
            "every metric and its anomaly scores for the last closed hour in one run, tagged "
            "loglens/metric.<name>=true for each metric, so the Runs page filters by metric."
        ),
    )
    def hourly_metrics_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        ready = context.scheduled_execution_time - lateness
        hour = ready.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        key = partition_key(hour)
        return dg.RunRequest(
            run_key=key,
            partition_key=key,
            tags=metric_tags(metrics, "schedule"),
            # Named assets, like every LogLens run: see `runs._execute`.
            asset_selection=selection,
        )

    return hourly_metrics_schedule


def metric_tags(metrics: list[str], trigger: str) -> dict[str, str]:
    """Run tags naming each metric a run computes: one key per metric, as runs cover many.

    Per-metric runs would filter as well, but each queued run costs seconds of launch.
    """
    return {"loglens/trigger": trigger, **{f"loglens/metric.{name}": "true" for name in metrics}}
