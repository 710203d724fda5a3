"""Load and validate the YAML under `configs/` into `ProjectConfig`, or raise `ConfigError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from loglens_pipeline.config.errors import ConfigError, format_key_path
from loglens_pipeline.config.metrics import MetricsFile
from loglens_pipeline.config.models import ProjectConfig
from loglens_pipeline.metrics.compiler import CompiledMetric, MetricCompileError, compile_metric

MAIN_FILE = "loglens.yaml"
METRICS_FILE = "metrics.yaml"


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, turning syntax errors into a `ConfigError` with the line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([(path, "(file)", "file not found")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([(path, where, f"invalid YAML: {reason}")]) from None


def _describe(error: dict[str, Any]) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    message = message.removeprefix("Value error, ")
    if kind not in {"value_error", "assertion_error"} and "input" in error:
        message += f" (got {error['input']!r})"
    return message


def _key_path(loc: tuple[str | int, ...], data: Any) -> str:
    """Key path of an error, with the `name` of list items added so users find them."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{part}]" + (f" ({name})" if name else ""))
            continue
        parts.append(format_key_path([part]) if isinstance(part, str) else f"[{part}]")
        node = node.get(part) if isinstance(node, dict) else None
    text = "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".")
    return text or "(top level)"


def validate_model(model: type[BaseModel], data: Any, path: Path) -> Any:
    """Validate parsed YAML against a model, reporting every problem with file and key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([(path, "(top level)", "expected a mapping of keys to values")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [(path, _key_path(err["loc"], data), _describe(err)) for err in exc.errors()]
        raise ConfigError(problems) from None


def load_project(config_dir: Path) -> ProjectConfig:
    """Load `configs/loglens.yaml` (sources, warehouse, ingestion, partitions)."""
    path = config_dir / MAIN_FILE
    return validate_model(ProjectConfig, read_yaml(path), path)


def load_metrics(config_dir: Path, config: ProjectConfig) -> list[CompiledMetric]:
    """Load `configs/metrics.yaml` (optional) and compile every metric against the sources."""
    path = config_dir / METRICS_FILE
    if not path.exists():
        return []
    data = read_yaml(path)
    spec = validate_model(MetricsFile, data, path)
    sources = {source.name: source for source in config.sources}
    compiled, problems, seen = [], [], set()
    for index, metric in enumerate(spec.metrics):
        if metric.name in seen:
            problems.append(
                (path, f"metrics[{index}] ({metric.name}).name", "metric name is used twice")
            )
            continue
        seen.add(metric.name)
        try:
            compiled.append(compile_metric(metric, sources))
        except MetricCompileError as exc:
            problems.append((path, f"metrics[{index}] ({metric.name}).{exc.key}", exc.reason))
    if problems:
        raise ConfigError(problems)
    return compiled
