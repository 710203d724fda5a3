"""Launching LogLens's jobs in-process on an instance: used by the demo and the CLI."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from loglens_pipeline.defs.partitions import partition_key

# Keep the terminal readable: run logs stay in the instance (and the UI); errors still print.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def run_ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Ingest every new byte of every watched file, as one `ingest_job` run."""
    return defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, run_config=QUIET, tags={"loglens/trigger": trigger}
    )


def run_metrics_range(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: datetime,
    last: datetime,
    *,
    trigger: str,
) -> dg.ExecuteInProcessResult:
    """Metrics (and anomalies) for the hours `first`..`last` inclusive, as one single run."""
    tags = {
        "dagster/asset_partition_range_start": partition_key(first),
        "dagster/asset_partition_range_end": partition_key(last),
        "loglens/trigger": trigger,
    }
    return defs.resolve_job_def("metrics_job").execute_in_process(
        instance=instance, run_config=QUIET, tags=tags
    )


def run_publish(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Rebuild the analytics views and publish the reader copy for BI tools."""
    return defs.resolve_job_def("publish_reader_job").execute_in_process(
        instance=instance, run_config=QUIET, tags={"loglens/trigger": trigger}
    )


def run_replay(
    defs: dg.Definitions, instance: dg.DagsterInstance, sources: list[str], *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Re-parse quarantined lines of `sources` (all when empty) with the current config."""
    config = {"ops": {"replay_quarantined_lines": {"config": {"sources": sources}}}}
    return defs.resolve_job_def("replay_quarantine_job").execute_in_process(
        instance=instance, run_config={**QUIET, **config}, tags={"loglens/trigger": trigger}
    )
