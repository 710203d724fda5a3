"""Configuration: typed models for `configs/*.yaml`, where they live, and how they load."""

from loglens_pipeline.config.errors import ConfigError
from loglens_pipeline.config.loader import load_project
from loglens_pipeline.config.models import ProjectConfig, SourceConfig
from loglens_pipeline.config.paths import ProjectPaths

__all__ = ["ConfigError", "ProjectConfig", "ProjectPaths", "SourceConfig", "load_project"]
