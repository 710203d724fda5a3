"""The hourly partitions shared by the events-by-hour asset, metrics and anomalies (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from loglens_pipeline.config.models import PartitionsConfig

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


def hourly_partitions(config: PartitionsConfig) -> dg.HourlyPartitionsDefinition:
    """One partition per closed UTC hour from `partitions.start`."""
    return dg.HourlyPartitionsDefinition(
        start_date=f"{config.start:%Y-%m-%d}-00:00", timezone="UTC"
    )


def partition_key(hour: datetime) -> str:
    return hour.strftime(PARTITION_FORMAT)


def partition_hour(key: str) -> datetime:
    """Partition key -> naive UTC datetime of the hour's start."""
    return datetime.strptime(key, PARTITION_FORMAT)


def closed_hours(
    hours: list[datetime], config: PartitionsConfig, now: datetime | None = None
) -> list[datetime]:
    """The hours (naive UTC) that exist as partitions: from the start to the last closed hour."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    current = now.replace(minute=0, second=0, microsecond=0)
    first = datetime(config.start.year, config.start.month, config.start.day)
    return [hour for hour in hours if first <= hour < current]


def late_hours(
    hours: list[datetime], config: PartitionsConfig, now: datetime | None = None
) -> list[datetime]:
    """Hours that closed longer ago than the allowed lateness: not re-materialized automatically."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    limit = timedelta(minutes=config.allowed_lateness_minutes)
    return [hour for hour in hours if hour + timedelta(hours=1) + limit < now]


def run_hours(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    """The run's hours `[start, end)` as naive UTC: one partition, or a single-run range."""
    window = context.partition_time_window
    return (
        window.start.astimezone(UTC).replace(tzinfo=None),
        window.end.astimezone(UTC).replace(tzinfo=None),
    )
