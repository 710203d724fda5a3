"""Typed models for `configs/loglens.yaml`. Every later step receives these, never raw dicts."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
from pydantic import BeforeValidator, Field, field_validator, model_validator

from loglens_pipeline.config.alerts import AlertsConfig
from loglens_pipeline.config.base import NAME_PATTERN, StrictModel, require_unique_names
from loglens_pipeline.ingest.formats import DEFAULT_MAPPINGS, PRESETS, key_json_path, known_formats

FIELD_TYPES = ("string", "int", "float", "bool", "timestamp")
FieldType = Literal["string", "int", "float", "bool", "timestamp"]
CANONICAL_COLUMNS = ("level", "service", "host", "message")
TIMESTAMP_KEYWORDS = ("iso8601", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "syslog")


@lru_cache(maxsize=256)
def _strptime_problem(pattern: str) -> str | None:
    """DuckDB's complaint about a strptime pattern, None when DuckDB accepts it."""
    with duckdb.connect() as conn:
        try:
            conn.execute("SELECT try_strptime('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            return str(exc).split(": ", 1)[-1]
    return None


class TimestampSpec(StrictModel):
    """Where a source's event time is and how to read it."""

    field: str = "ts"
    format: str = Field(
        default="iso8601",
        description=(
            "iso8601, epoch_s, epoch_ms, epoch_us, epoch_ns, syslog (`Nov 25 13:00:00`, year "
            "inferred), or a strptime pattern such as %d/%b/%Y:%H:%M:%S %z"
        ),
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value in TIMESTAMP_KEYWORDS:
            return value
        if "%" not in value:
            raise ValueError(
                f"unknown timestamp format {value!r}: use {', '.join(TIMESTAMP_KEYWORDS)} "
                "or a strptime pattern containing % directives"
            )
        problem = _strptime_problem(value)
        if problem is not None:
            raise ValueError(f"invalid strptime pattern {value!r}: {problem}")
        return value


class FieldSpec(StrictModel):
    """A typed field under its own name: where it is (`path`) and its type."""

    path: str = Field(min_length=1, description="JSON path, logfmt key or regex group")
    type: FieldType = "string"


def _field_entry(value: object) -> object:
    """One `fields` entry: a type name, or `{path, type}`; errors name the problem plainly."""
    types = ", ".join(FIELD_TYPES)
    if isinstance(value, str):
        if value not in FIELD_TYPES:
            raise ValueError(f"unknown type {value!r} (use one of {types})")
        return value
    if isinstance(value, dict):
        unknown = sorted(str(k) for k in value if k not in ("path", "type"))
        if unknown:
            raise ValueError(
                f"unknown key {unknown[0]!r}: a renamed field is {{path: ..., type: ...}}"
            )
        path = value.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ValueError("a renamed field needs 'path': the JSON path, logfmt key or group")
        kind = value.get("type", "string")
        if kind not in FIELD_TYPES:
            raise ValueError(f"unknown type {kind!r} (use one of {types})")
        return FieldSpec(path=path, type=kind)
    if isinstance(value, FieldSpec):
        return value
    raise ValueError(f"expected a type ({types}) or a mapping {{path: ..., type: ...}}")


FieldEntry = Annotated[FieldType | FieldSpec, BeforeValidator(_field_entry)]


class MultilineSpec(StrictModel):
    """Events that span lines (stack traces): a line matching `start` begins a new event."""

    start: str = Field(description="regex a first line matches, e.g. ^\\d{4}-\\d\\d-\\d\\d")
    max_lines: int = Field(default=200, ge=2, le=100_000)
    timeout_seconds: int = Field(
        default=5, ge=0, description="an event at the end of an idle file is complete after this"
    )

    @field_validator("start")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return value


class SourceConfig(StrictModel):
    """One kind of log: the files it covers and how their lines become events."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    glob: str = Field(description="glob relative to the logs directory, e.g. app/*.jsonl")
    format: str
    pattern: str | None = Field(default=None, description="regex with named groups (format: regex)")
    timestamp: TimestampSpec | None = None
    timezone: str = "UTC"
    tenant: str | None = None
    service: str | None = Field(default=None, description="service name when lines carry none")
    mapping: dict[Literal["level", "service", "host", "message"], str] | None = None
    fields: dict[str, FieldEntry] = Field(
        default_factory=dict,
        description="typed fields: `name: type`, or `name: {path: ..., type: ...}` to rename",
    )
    multiline: MultilineSpec | None = None
    on_cast_error: Literal["keep", "quarantine"] = Field(
        default="keep",
        description=(
            "a declared non-string field that is present but does not cast: keep the event "
            "(metrics see NULL) or quarantine the line as bad_field:<name>"
        ),
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in known_formats():
            raise ValueError(
                f"unknown format {value!r}; known formats: {', '.join(known_formats())}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as UTC)"
            ) from None
        return value

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("the regex has no named groups, e.g. (?P<level>[A-Z]+)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if self.format == "regex" and self.pattern is None:
            raise ValueError("format 'regex' needs a 'pattern' with named groups")
        if self.format in ("json", "logfmt") and self.pattern is not None:
            raise ValueError("'pattern' only applies to format 'regex' or a preset")
        if self.format != "json":
            for name, entry in self.fields.items():
                if isinstance(entry, FieldSpec) and entry.path.startswith("$"):
                    raise ValueError(
                        f"fields.{name}.path: JSON paths ($...) only apply to format 'json'; "
                        "name the logfmt key or regex group as it is"
                    )
        groups = self.regex_groups()
        if groups is not None:
            for key, group in {
                "timestamp.field": self.timestamp_spec().field,
                **{f"mapping.{k}": v for k, v in self.field_mapping().items()},
                **{
                    f"fields.{name}" + (".path" if isinstance(entry, FieldSpec) else ""): (
                        entry.path if isinstance(entry, FieldSpec) else name
                    )
                    for name, entry in self.fields.items()
                },
            }.items():
                if group not in groups:
                    raise ValueError(
                        f"{key} names group {group!r}, which the regex does not define"
                    )
        return self

    # Effective settings: a preset supplies defaults that the source's own keys override.
    def effective_pattern(self) -> str | None:
        if self.pattern is not None:
            return self.pattern
        preset = PRESETS.get(self.format)
        return preset.pattern if preset else None

    def regex_groups(self) -> list[str] | None:
        pattern = self.effective_pattern()
        return None if pattern is None else list(re.compile(pattern).groupindex)

    def timestamp_spec(self) -> TimestampSpec:
        if self.timestamp is not None:
            return self.timestamp
        preset = PRESETS.get(self.format)
        if preset:
            return TimestampSpec(field=preset.timestamp_field, format=preset.timestamp_format)
        return TimestampSpec()

    def field_mapping(self) -> dict[str, str]:
        if self.mapping is not None:
            return dict(self.mapping)
        preset = PRESETS.get(self.format)
        if preset:
            return dict(preset.mapping)
        return dict(DEFAULT_MAPPINGS.get(self.format, DEFAULT_MAPPINGS["json"]))

    def level_from_pri(self) -> bool:
        """Whether `level` is read from a syslog PRI group (the preset's, still mapped)."""
        preset = PRESETS.get(self.format)
        group = preset.level_pri_group if preset else None
        return group is not None and self.field_mapping().get("level") == group

    def field_specs(self) -> dict[str, FieldSpec]:
        """Every typed field by name: the preset's, then the source's own (which win).

        A path is a dotted JSON path (json; `$...` taken as is), a whole key (logfmt) or a
        group name (regex and presets).
        """
        preset = PRESETS.get(self.format)
        specs = {
            name: FieldSpec(path=name, type=kind)
            for name, kind in (preset.fields if preset else {}).items()
        }
        for name, entry in self.fields.items():
            specs[name] = (
                entry if isinstance(entry, FieldSpec) else FieldSpec(path=name, type=entry)
            )
        return specs

    def field_types(self) -> dict[str, str]:
        """Name -> type of every typed field metrics may use."""
        return {name: spec.type for name, spec in self.field_specs().items()}

    def field_paths(self) -> dict[str, str]:
        """Name -> where the field is in `attrs`, for `parsers.json_path` (which keeps `$...`).

        logfmt keys are stored whole, so a key containing dots (or starting with `$`) is given
        as a JSON path of that one key: `$."a.b"`.
        """
        paths = {name: spec.path for name, spec in self.field_specs().items()}
        if self.format == "logfmt":
            paths = {
                n: key_json_path(p) if "." in p or p.startswith("$") else p
                for n, p in paths.items()
            }
        return paths


class WarehouseConfig(StrictModel):
    """The DuckDB file and the resources DuckDB may use."""

    path: str = "warehouse/loglens.duckdb"
    reader_path: str = Field(
        default="warehouse/reader.duckdb",
        description="read-only copy for BI tools, replaced atomically after runs",
    )
    memory_limit: str = Field(default="256MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
    threads: int = Field(default=2, ge=1, le=64)

    @field_validator("path", "reader_path")
    @classmethod
    def _not_a_schema_name(cls, value: str) -> str:
        stem = value.rsplit("/", 1)[-1].split(".", 1)[0]
        if stem in {"raw", "metrics", "anomalies", "analytics", "main"}:
            raise ValueError(
                f"the warehouse file may not be named {stem!r}: DuckDB would confuse the "
                "catalog with the schema of that name"
            )
        return value


class IngestConfig(StrictModel):
    """How much work one ingestion step does at a time."""

    logs_dir: str = "logs"
    chunk_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_files_per_run: int = Field(default=200, ge=1)
    flush_partial_after_seconds: int | None = Field(
        default=300,
        ge=0,
        description="read a final unterminated line once the file is idle this long",
    )
    sensor_interval_seconds: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _line_fits_chunk(self) -> IngestConfig:
        # A line of max_line_bytes must fit in one chunk with its CRLF terminator.
        if self.max_line_bytes > self.chunk_bytes - 2:
            raise ValueError("max_line_bytes must be at most chunk_bytes - 2")
        return self


class PartitionsConfig(StrictModel):
    """The hourly partitions metrics and anomalies share."""

    start: date = date(2026, 1, 1)
    allowed_lateness_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60)


class RetentionConfig(StrictModel):
    """How long each class of table keeps rows (days; null keeps everything)."""

    raw_days: int | None = Field(default=30, ge=1)
    metrics_days: int | None = Field(default=400, ge=1)
    anomalies_days: int | None = Field(default=400, ge=1)


class ProjectConfig(StrictModel):
    """Everything under `configs/`, validated."""

    warehouse: WarehouseConfig = WarehouseConfig()
    ingest: IngestConfig = IngestConfig()
    partitions: PartitionsConfig = PartitionsConfig()
    retention: RetentionConfig = RetentionConfig()
    alerts: AlertsConfig = AlertsConfig()
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        return require_unique_names(sources, "source")

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)
