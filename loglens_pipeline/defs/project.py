"""The loaded project (config + paths) every area's definitions are built from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loglens_pipeline.config import ProjectConfig, ProjectPaths, load_project

WAREHOUSE_POOL = "warehouse"  # every asset that writes to DuckDB runs in this pool (limit 1)


@dataclass(frozen=True)
class Project:
    """Validated configuration plus the resolved locations it refers to."""

    config: ProjectConfig
    paths: ProjectPaths

    @classmethod
    def load(cls, paths: ProjectPaths | None = None) -> Project:
        paths = paths or ProjectPaths.from_env()
        return cls(load_project(paths.config_dir), paths)

    @property
    def logs_dir(self) -> Path:
        return self.paths.under_data(self.config.ingest.logs_dir)

    @property
    def warehouse_path(self) -> Path:
        return self.paths.under_data(self.config.warehouse.path)
