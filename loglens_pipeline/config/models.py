"""Typed models for `configs/loglens.yaml`. Every later step receives these, never raw dicts."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from loglens_pipeline.config.alerts import AlertsConfig
from loglens_pipeline.config.base import NAME_PATTERN, StrictModel
from loglens_pipeline.ingest.formats import PRESETS, known_formats

FieldType = Literal["string", "int", "float", "bool", "timestamp"]
CANONICAL_COLUMNS = ("level", "service", "host", "message")
TIMESTAMP_KEYWORDS = ("iso8601", "epoch_s", "epoch_ms")


class TimestampSpec(StrictModel):
    """Where a source's event time is and how to read it."""

    field: str = "ts"
    format: str = Field(
        default="iso8601",
        description="iso8601, epoch_s, epoch_ms, or a strptime pattern such as %d/%b/%Y:%H:%M:%S %z",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value in TIMESTAMP_KEYWORDS or "%" in value:
            return value
        raise ValueError(
            f"unknown timestamp format {value!r}: use iso8601, epoch_s, epoch_ms "
            "or a strptime pattern containing % directives"
        )


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
    fields: dict[str, FieldType] = Field(default_factory=dict)

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
        if self.format == "json" and self.pattern is not None:
            raise ValueError("'pattern' only applies to format 'regex' or a preset")
        groups = self.regex_groups()
        if groups is not None:
            for key, group in {
                "timestamp.field": self.timestamp_spec().field,
                **{f"mapping.{k}": v for k, v in self.field_mapping().items()},
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
        return {column: column for column in CANONICAL_COLUMNS}

    def field_types(self) -> dict[str, str]:
        preset = PRESETS.get(self.format)
        return {**(preset.fields if preset else {}), **self.fields}


class WarehouseConfig(StrictModel):
    """The DuckDB file and the resources DuckDB may use."""

    path: str = "warehouse/loglens.duckdb"
    reader_path: str = Field(
        default="warehouse/reader.duckdb",
        description="read-only copy for BI tools, replaced atomically after runs",
    )
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
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
    chunk_bytes: int = Field(default=32 * 1024 * 1024, ge=4096)
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_files_per_run: int = Field(default=200, ge=1)
    sensor_interval_seconds: int = Field(default=5, ge=1)

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
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return sources

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)
