"""The LogLens code location: loads `configs/` and assembles each area's definitions.

A malformed config raises `ConfigError` here, so the definitions refuse to load with the same
message `loglens validate` prints. Nothing here opens the warehouse.
"""

from __future__ import annotations

import dagster as dg

from loglens_pipeline.defs.ingest.definitions import ingest_definitions
from loglens_pipeline.defs.project import Project
from loglens_pipeline.defs.resources import warehouse_resource


def build_definitions(project: Project) -> dg.Definitions:
    """All definitions for one project (tests build them for temporary projects)."""
    return dg.Definitions.merge(
        ingest_definitions(project),
        dg.Definitions(resources={"warehouse": warehouse_resource(project)}),
    )


defs = build_definitions(Project.load())
