"""Everything the ingestion area contributes to the code location."""

from __future__ import annotations

import dagster as dg

from loglens_pipeline.defs.ingest.assets import (
    RAW_EVENTS,
    build_ingest_asset,
    event_hours_spec,
    source_specs,
)
from loglens_pipeline.defs.ingest.replay import build_replay_job
from loglens_pipeline.defs.ingest.sensors import build_log_file_sensor
from loglens_pipeline.defs.project import Project


def ingest_definitions(project: Project, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    """Source specs, `raw/events`, `raw/event_hours`, `ingest_job` and `log_file_sensor`."""
    ingest_job = dg.define_asset_job(
        "ingest_job",
        selection=dg.AssetSelection.assets(RAW_EVENTS),
        description="Ingest new bytes of watched log files into raw.events.",
        tags={"loglens/area": "ingest"},
    )
    return dg.Definitions(
        assets=[
            *source_specs(project),
            build_ingest_asset(project),
            event_hours_spec(project, partitions),
        ],
        jobs=[ingest_job, build_replay_job(project)],
        sensors=[build_log_file_sensor(project, ingest_job)],
    )
