"""Resources: the DuckDB warehouse, shared by ingestion and the metric IO manager."""

from __future__ import annotations

from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.project import Project
from loglens_pipeline.warehouse.connection import connection_config


def warehouse_resource(project: Project) -> DuckDBResource:
    """The warehouse as a Dagster resource; connections are opened only inside runs."""
    return DuckDBResource(
        database=str(project.warehouse_path),
        connection_config=connection_config(project.config.warehouse),
    )
