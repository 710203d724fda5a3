"""Launching LogLens's jobs in-process on an instance: used by the demo and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import uuid4

import dagster as dg

from loglens_pipeline import progress
from loglens_pipeline.defs.metrics.schedules import metric_tags
from loglens_pipeline.defs.partitions import partition_key
from loglens_pipeline.instance.orphans import fail_orphaned_runs, process_tag

# Keep the terminal readable: run logs stay in the instance (and the UI); errors still print.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _execute(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: Mapping,
    tags: Mapping[str, str],
) -> dg.ExecuteInProcessResult:
    """Run a job in this process, publishing its assets to `progress` as they are stored.

    The run id is chosen here so the listener is in place before the run's first event; the
    instance calls it, in this thread, for every event it stores for that run. The run names
    its assets (not just the job): automation then knows that assets computed together in it,
    such as an anomaly partition and its metric, need no further run. Runs left behind by a
    killed process are failed first, so their pool slot does not hold this one back.
    """
    fail_orphaned_runs(instance)
    job = defs.resolve_job_def(job_name)
    assets = sorted(job.asset_layer.selected_asset_keys)
    run_id = str(uuid4())
    if progress.listening():
        progress.publish(progress.AssetsPlanned(run_id, job_name, len(assets)))

        def forward(entry) -> None:
            # One HANDLED_OUTPUT per asset, however many partitions the run covers.
            event = entry.dagster_event
            if event is not None and event.event_type == dg.DagsterEventType.HANDLED_OUTPUT:
                progress.publish(
                    progress.AssetStored(run_id, event.event_specific_data.output_name)
                )

        instance.add_event_listener(run_id, forward)
    return job.execute_in_process(
        instance=instance,
        run_config=run_config,
        tags={**tags, **process_tag()},
        run_id=run_id,
        asset_selection=assets or None,
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
    assets = defs.resolve_job_def("metrics_job").asset_layer.selected_asset_keys
    metrics = sorted(key.path[-1] for key in assets if key.path[0] == "metrics")
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
