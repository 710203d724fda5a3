"""The loaded project (config + paths) every area's definitions are built from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from loglens_pipeline.config import ProjectConfig, ProjectPaths, load_project
from loglens_pipeline.config.loader import load_metrics
from loglens_pipeline.metrics.compiler import CompiledMetric

WAREHOUSE_POOL = "warehouse"  # every asset that writes to DuckDB runs in this pool (limit 1)
OWNER = "team:loglens"  # owner of the assets that are not declared in configs/metrics.yaml


def code_version(*parts: str) -> str:
    """A code version from what determines an asset's output: changing any part marks it stale."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Project:
    """Validated configuration, compiled metrics and the resolved locations they refer to."""

    config: ProjectConfig
    paths: ProjectPaths
    metrics: tuple[CompiledMetric, ...] = ()

    @classmethod
    def load(cls, paths: ProjectPaths | None = None) -> Project:
        """Load and validate everything under the config dir; raises `ConfigError`."""
        paths = paths or ProjectPaths.from_env()
        config = load_project(paths.config_dir)
        return cls(config, paths, tuple(load_metrics(paths.config_dir, config)))

    @property
    def logs_dir(self) -> Path:
        return self.paths.under_data(self.config.ingest.logs_dir)

    @property
    def warehouse_path(self) -> Path:
        return self.paths.under_data(self.config.warehouse.path)

    @property
    def reader_path(self) -> Path:
        return self.paths.under_data(self.config.warehouse.reader_path)
