"""Where LogLens finds its configs and keeps its data, overridable by environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ProjectPaths:
    """The two roots everything else is relative to.

    `LOGLENS_CONFIG_DIR` (default `<repo>/configs`) holds the YAML; `LOGLENS_DATA_DIR`
    (default `<repo>/data`) holds watched logs, the warehouse and the demo's Dagster home.
    """

    config_dir: Path
    data_dir: Path

    @classmethod
    def from_env(cls) -> ProjectPaths:
        config_dir = os.environ.get("LOGLENS_CONFIG_DIR") or REPO_ROOT / "configs"
        data_dir = os.environ.get("LOGLENS_DATA_DIR") or REPO_ROOT / "data"
        return cls(Path(config_dir).resolve(), Path(data_dir).resolve())

    def under_data(self, relative: str | Path) -> Path:
        """A path from the config, resolved against the data directory unless absolute."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.data_dir / path
