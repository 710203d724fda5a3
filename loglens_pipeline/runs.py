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


def _execute(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: Mapping,
    tags: Mapping[str, str],
    asset_selection: list[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run a job in this process, publishing its assets to `progress` as they are stored.

    The run id is chosen here so the listener is in place before the run's first event; the
    instance calls it, in this thread, for every event it stores for that run.
    """
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid4())
    if progress.listening():
        planned = len(job.asset_layer.selected_asset_keys)
        progress.publish(progress.AssetsPlanned(run_id, job_name, planned))

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
        tags=tags,
        run_id=run_id,
        asset_selection=asset_selection,
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
    keys = sorted(
        key
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[0] in ("metrics", "anomalies")
    )
    tags = {
        "dagster/asset_partition_range_start": partition_key(first),
        "dagster/asset_partition_range_end": partition_key(last),
        **metric_tags([key.path[-1] for key in keys if key.path[0] == "metrics"], trigger),
    }
    # Named assets (not the whole job): automation then knows each anomaly partition was
    # materialized in the run that updated its metric, and does not request it again.
    return _execute(defs, "metrics_job", instance, QUIET, tags, asset_selection=keys)


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
