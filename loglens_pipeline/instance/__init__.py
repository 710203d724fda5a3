"""The Dagster instance LogLens runs in: a DAGSTER_HOME holding the shipped `dagster.yaml`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import yaml

from loglens_pipeline.config.paths import REPO_ROOT

SHIPPED_INSTANCE_CONFIG = REPO_ROOT / "dagster.yaml"


def prepare_dagster_home(home: Path) -> Path:
    """Create `home` with the shipped instance config (pools, no telemetry, no first-run modal)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != SHIPPED_INSTANCE_CONFIG.read_bytes():
        shutil.copyfile(SHIPPED_INSTANCE_CONFIG, target)
    return home


def shipped_instance_config() -> dict:
    """The shipped `dagster.yaml` as a dict, e.g. for `dg.instance_for_test(overrides=...)`,
    which writes its own `dagster.yaml` over whatever the home held."""
    return yaml.safe_load(SHIPPED_INSTANCE_CONFIG.read_text())


def open_instance(home: Path) -> dg.DagsterInstance:
    """A persistent instance at `home`, also exported as DAGSTER_HOME for child processes."""
    prepare_dagster_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
