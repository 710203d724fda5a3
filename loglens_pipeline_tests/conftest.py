"""Shared fixtures: a temporary LogLens project (configs + data dir) and a real Dagster instance."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from loglens_pipeline.config import ProjectPaths
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline.defs.project import Project
from loglens_pipeline.instance import shipped_instance_config

SHIPPED_CONFIGS = REPO_ROOT / "configs"


def write_project(root: Path, overrides: Callable[[dict], None] | None = None) -> Project:
    """Copy the shipped configs under `root/configs`, apply `overrides` to loglens.yaml, load."""
    config_dir = root / "configs"
    shutil.copytree(SHIPPED_CONFIGS, config_dir)
    if overrides is not None:
        main = config_dir / "loglens.yaml"
        data = yaml.safe_load(main.read_text())
        overrides(data)
        main.write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(ProjectPaths(config_dir, root / "data"))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with the shipped configs and small chunks, so files span several transactions."""

    def small_chunks(data: dict) -> None:
        data["ingest"]["chunk_bytes"] = 64 * 1024
        data["ingest"]["max_line_bytes"] = 16 * 1024

    return write_project(tmp_path, small_chunks)


@pytest.fixture
def instance(tmp_path: Path) -> dg.DagsterInstance:
    """A real, persistent Dagster instance in a temporary DAGSTER_HOME with the shipped config."""
    yield from shipped_test_instance(tmp_path / "dagster_home")


def shipped_test_instance(home: Path):
    """`dg.instance_for_test` on `home` with the shipped `dagster.yaml` (storage, pools)."""
    home.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(overrides=shipped_instance_config(), temp_dir=str(home)) as inst:
        yield inst


def query(project: Project, sql: str, params: list | None = None) -> list[tuple]:
    """Rows from the project's warehouse file, opened read-only."""
    with duckdb.connect(str(project.warehouse_path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()
