"""The LogLens code location: loads `configs/` and assembles each area's definitions.

A malformed config raises `ConfigError` here, so the definitions refuse to load with the same
message `loglens validate` prints. Nothing here opens the warehouse.
"""

from __future__ import annotations

import warnings

import dagster as dg

from loglens_pipeline.defs.anomalies.definitions import anomalies_definitions
from loglens_pipeline.defs.automation import automation_sensor
from loglens_pipeline.defs.ingest.definitions import ingest_definitions
from loglens_pipeline.defs.metrics.definitions import metrics_definitions
from loglens_pipeline.defs.partitions import hourly_partitions
from loglens_pipeline.defs.project import Project
from loglens_pipeline.defs.resources import warehouse_resource
from loglens_pipeline.defs.warehouse.assets import warehouse_definitions

# Single-run backfills are what make a range of hours one SQL statement per metric.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def build_definitions(project: Project) -> dg.Definitions:
    """All definitions for one project (tests build them for temporary projects)."""
    partitions = hourly_partitions(project.config.partitions)
    return dg.Definitions.merge(
        ingest_definitions(project, partitions),
        metrics_definitions(project, partitions),
        anomalies_definitions(project),
        warehouse_definitions(project),
        dg.Definitions(
            sensors=[automation_sensor()],
            resources={"warehouse": warehouse_resource(project)},
            # Writer steps run one at a time anyway (pool "warehouse", limit 1): running them in
            # the run's own process saves starting a Python process per step.
            executor=dg.in_process_executor,
        ),
    )


defs = build_definitions(Project.load())
