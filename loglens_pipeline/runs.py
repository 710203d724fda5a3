"""Launching LogLens's jobs in-process on an instance: used by the demo and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import uuid4

import dagster as dg

from loglens_pipeline import progress
from loglens_pipeline.defs.metrics.schedules import metric_tags
from loglens_pipeline.defs.partitions import partition_key

# Keep the terminal readable: run logs stay in the instance (and the UI); errors still print.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
STEP_ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


def _execute(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: Mapping,
    tags: Mapping[str, str],
) -> dg.ExecuteInProcessResult:
    """Run a job in this process, publishing its steps to `progress` as they finish.

    The run id is chosen here so the listener is in place before the run's first event; the
    instance calls it, in this thread, for every event it stores for that run.
    """
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid4())
    if progress.listening():
        # Every node of these jobs (an asset or an op) runs as one step.
        progress.publish(progress.StepsPlanned(run_id, job_name, len(job.graph.nodes)))

        def forward(entry) -> None:
            event = entry.dagster_event
            if event is not None and event.event_type in STEP_ENDS:
                progress.publish(
                    progress.StepFinished(run_id, event.step_key, event.is_step_success)
                )

        instance.add_event_listener(run_id, forward)
    return job.execute_in_process(
        instance=instance, run_config=run_config, tags=tags, run_id=run_id
    )


def run_ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Ingest every new byte of every watched file, as one `ingest_job` run."""
    return _execute(defs, "ingest_job", instance, QUIET, {"loglens/trigger": trigger})


def run_metrics_range(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: datetime,
    last: datetime,
    *,
    trigger: str,
) -> dg.ExecuteInProcessResult:
    """Metrics (and anomalies) for the hours `first`..`last` inclusive, as one single run."""
    metrics = sorted(
        key.path[-1]
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[0] == "metrics"
    )
    tags = {
        "dagster/asset_partition_range_start": partition_key(first),
        "dagster/asset_partition_range_end": partition_key(last),
        **metric_tags(metrics, trigger),
    }
    return _execute(defs, "metrics_job", instance, QUIET, tags)


def run_publish(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Rebuild the analytics views and publish the reader copy for BI tools."""
    return _execute(defs, "publish_reader_job", instance, QUIET, {"loglens/trigger": trigger})


def run_replay(
    defs: dg.Definitions, instance: dg.DagsterInstance, sources: list[str], *, trigger: str
) -> dg.ExecuteInProcessResult:
    """Re-parse quarantined lines of `sources` (all when empty) with the current config."""
    config = {"ops": {"replay_quarantined_lines": {"config": {"sources": sources}}}}
    return _execute(
        defs, "replay_quarantine_job", instance, {**QUIET, **config}, {"loglens/trigger": trigger}
    )
