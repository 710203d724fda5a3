"""A malformed config names the file, the key path and what is wrong, before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loglens_pipeline.cli import app
from loglens_pipeline.config import ConfigError, ProjectPaths, load_project
from loglens_pipeline.config.paths import REPO_ROOT
from loglens_pipeline_tests.conftest import write_project


def broken(tmp_path: Path, change) -> Path:
    """A copy of the shipped configs with one change to loglens.yaml; returns the file."""
    with pytest.raises(ConfigError):
        write_project(tmp_path, change)
    return tmp_path / "configs" / "loglens.yaml"


def error_text(tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "configs")
    return str(info.value)


def test_shipped_configs_are_valid():
    config = load_project(REPO_ROOT / "configs")
    assert [s.name for s in config.sources] == ["app", "nginx"]


def test_unknown_key_is_named_with_its_path(tmp_path):
    file = broken(tmp_path, lambda d: d["sources"][0].update(globb="x/*.log"))
    assert f"{file}: sources[0] (app).globb: unknown key" in error_text(tmp_path)


def test_wrong_type_names_key_and_value(tmp_path):
    file = broken(tmp_path, lambda d: d["ingest"].update(max_files_per_run="many"))
    text = error_text(tmp_path)
    assert f"{file}: ingest.max_files_per_run: Input should be a valid integer" in text
    assert "'many'" in text


def test_bad_regex_is_reported_with_the_regex_problem(tmp_path):
    def bad_regex(d):
        d["sources"].append(
            {
                "name": "custom",
                "glob": "c/*.log",
                "format": "regex",
                "pattern": "(?P<ts>\\d+ (?P<level>[A-Z]+",
            }
        )

    file = broken(tmp_path, bad_regex)
    text = error_text(tmp_path)
    assert (
        f"{file}: sources[2] (custom).pattern: invalid regex: missing ), unterminated subpattern"
        in text
    )


def test_missing_required_field(tmp_path):
    file = broken(tmp_path, lambda d: d["sources"][1].pop("glob"))
    assert f"{file}: sources[1] (nginx).glob: missing required key" in error_text(tmp_path)


def test_regex_source_needs_a_pattern(tmp_path):
    file = broken(
        tmp_path, lambda d: d["sources"][0].update(format="regex", mapping=None, fields={})
    )
    assert f"{file}: sources[0] (app): format 'regex' needs a 'pattern'" in error_text(tmp_path)


def test_mapping_to_a_group_the_regex_lacks(tmp_path):
    def bad_mapping(d):
        d["sources"][1]["mapping"] = {"message": "request", "level": "severity"}

    file = broken(tmp_path, bad_mapping)
    assert (
        f"{file}: sources[1] (nginx): mapping.level names group 'severity', "
        "which the regex does not define" in error_text(tmp_path)
    )


def test_unknown_format_lists_known_ones(tmp_path):
    file = broken(tmp_path, lambda d: d["sources"][0].update(format="xml"))
    text = error_text(tmp_path)
    assert (
        f"{file}: sources[0] (app).format: unknown format 'xml'; known formats: json, regex" in text
    )


def test_unknown_timezone_and_timestamp_format(tmp_path):
    def two_errors(d):
        d["sources"][0]["timezone"] = "Mars/Olympus"
        d["sources"][0]["timestamp"]["format"] = "yyyy-mm-dd"

    file = broken(tmp_path, two_errors)
    text = error_text(tmp_path)
    assert text.startswith("2 configuration errors:")
    assert f"{file}: sources[0] (app).timezone: unknown time zone 'Mars/Olympus'" in text
    assert (
        f"{file}: sources[0] (app).timestamp.format: unknown timestamp format 'yyyy-mm-dd'" in text
    )


def test_duplicate_source_names(tmp_path):
    file = broken(tmp_path, lambda d: d["sources"][1].update(name="app"))
    assert f"{file}: sources: source name 'app' is used twice" in error_text(tmp_path)


def test_warehouse_file_named_like_a_schema_is_refused(tmp_path):
    file = broken(tmp_path, lambda d: d["warehouse"].update(path="warehouse/raw.duckdb"))
    assert f"{file}: warehouse.path: the warehouse file may not be named 'raw'" in error_text(
        tmp_path
    )


def test_invalid_yaml_names_the_line(tmp_path):
    write_project(tmp_path)
    file = tmp_path / "configs" / "loglens.yaml"
    file.write_text("sources:\n  - name: app\n    glob: [unclosed\n")
    assert f"{file}: line 4, column 1: invalid YAML" in error_text(tmp_path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"loglens.yaml: \(file\): file not found"):
        load_project(tmp_path)


def test_validate_command_prints_errors_and_fails(tmp_path, monkeypatch):
    file = broken(tmp_path, lambda d: d["sources"][0].update(globb="x"))
    result = CliRunner().invoke(app, ["validate", "--config-dir", str(tmp_path / "configs")])
    assert result.exit_code == 1
    assert f"{file}: sources[0] (app).globb: unknown key" in result.output.replace("\n", "")


def test_validate_command_accepts_shipped_configs():
    result = CliRunner().invoke(app, ["validate", "--config-dir", str(REPO_ROOT / "configs")])
    assert result.exit_code == 0, result.output
    assert "2 sources (app, nginx)" in result.output


def test_definitions_refuse_to_load_with_the_same_message(tmp_path):
    file = broken(tmp_path, lambda d: d["sources"][0].update(globb="x"))
    env = {
        "LOGLENS_CONFIG_DIR": str(tmp_path / "configs"),
        "LOGLENS_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "import loglens_pipeline.definitions"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode != 0
    assert f"{file}: sources[0] (app).globb: unknown key" in proc.stderr
    assert ProjectPaths.from_env().config_dir == REPO_ROOT / "configs"
