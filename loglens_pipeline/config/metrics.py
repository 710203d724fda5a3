"""Typed models for `configs/metrics.yaml`: each metric an analyst declares.

Expressions are kept as text here; `metrics/spec.py` checks them against the sources' fields
and compiles them, so a bad expression is reported at load time with the metric's key path.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from loglens_pipeline.config.base import NAME_PATTERN, StrictModel

HOUR = timedelta(hours=1)
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
VALUE_AGGREGATIONS = ("sum", "avg", "min", "max", "percentile", "unique_count")
AGGREGATIONS = ("count", "rate", *VALUE_AGGREGATIONS, "ratio")
OWNER_PATTERN = r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$"


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `1d` -> timedelta; anything else is a ValueError naming the forms."""
    match = _DURATION.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number with s, m, h or d (e.g. 5m)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _window_duration(text: str, what: str) -> timedelta:
    value = parse_duration(text)
    if value > HOUR:
        raise ValueError(
            f"{what} {text!r} is longer than an hour: metrics are hourly partitions, so windows must "
            "divide an hour (1m, 5m, 15m, 1h, ...); aggregate hourly buckets in SQL for daily views"
        )
    if HOUR % value:
        raise ValueError(
            f"{what} {text!r} must divide an hour evenly (1m, 2m, 5m, 10m, 15m, 30m, 1h, ...)"
        )
    return value


class WindowSpec(StrictModel):
    """A window of `size`, one every `step` (tumbling when they are equal)."""

    size: str
    step: str | None = None

    @field_validator("size", "step")
    @classmethod
    def _valid(cls, value: str | None, info) -> str | None:
        if value is not None:
            _window_duration(value, f"window {info.field_name}")
        return value

    @model_validator(mode="after")
    def _step_within_size(self) -> WindowSpec:
        if self.step is not None:
            size, step = parse_duration(self.size), parse_duration(self.step)
            if step > size or size % step:
                raise ValueError(
                    f"window size {self.size} must be a multiple of its step {self.step}"
                )
        return self

    @property
    def size_delta(self) -> timedelta:
        return parse_duration(self.size)

    @property
    def step_delta(self) -> timedelta:
        return parse_duration(self.step or self.size)

    @property
    def sliding(self) -> bool:
        return self.size_delta != self.step_delta


class AnomalySpec(StrictModel):
    """How a metric's points are scored; read by the anomaly layer."""

    enabled: bool = True
    method: Literal["zscore", "robust", "seasonal"] = "robust"
    threshold: float = Field(default=3.5, gt=0)
    baseline: str = Field(default="7d", description="how far back the baseline reaches")
    min_history: int = Field(default=12, ge=2, description="points needed before scoring")
    direction: Literal["up", "down", "both"] = "both"
    min_change: float = Field(
        default=0.0, ge=0, description="smallest absolute change that can alarm"
    )

    @field_validator("baseline")
    @classmethod
    def _valid_baseline(cls, value: str) -> str:
        parse_duration(value)
        return value


class MetricSpec(StrictModel):
    """One metric: which events, which aggregation, which windows, per which dimensions."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = Field(min_length=1)
    owner: Annotated[str, Field(pattern=OWNER_PATTERN)] = "team:loglens"
    tags: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,63}$")],
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,63}$")],
    ] = Field(default_factory=dict)
    source: list[str] = Field(min_length=1)
    filter: str | None = None
    aggregation: Literal[
        "count", "rate", "sum", "avg", "min", "max", "percentile", "unique_count", "ratio"
    ]
    field: str | None = Field(default=None, validate_default=True)
    p: float | None = Field(default=None, gt=0, lt=1, validate_default=True)
    numerator: str | None = Field(default=None, validate_default=True)
    denominator: str | None = Field(default=None, validate_default=True)
    window: WindowSpec
    group_by: list[str] = Field(default_factory=list)
    max_groups: int = Field(default=100, ge=1, le=10_000)
    anomaly: AnomalySpec = AnomalySpec()

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("window", mode="before")
    @classmethod
    def _short_window(cls, value):
        return {"size": value} if isinstance(value, str) else value

    # Cross-key rules are field validators (run for defaults too), so errors name the key.
    @field_validator("field")
    @classmethod
    def _field_fits_aggregation(cls, value: str | None, info: ValidationInfo) -> str | None:
        aggregation = info.data.get("aggregation")
        if aggregation in VALUE_AGGREGATIONS and not value:
            raise ValueError(f"aggregation '{aggregation}' needs a 'field'")
        if aggregation and aggregation not in VALUE_AGGREGATIONS and value:
            raise ValueError(f"aggregation '{aggregation}' takes no 'field'")
        return value

    @field_validator("p")
    @classmethod
    def _p_with_percentile(cls, value: float | None, info: ValidationInfo) -> float | None:
        aggregation = info.data.get("aggregation")
        if aggregation == "percentile" and value is None:
            raise ValueError("aggregation 'percentile' needs 'p' (e.g. 0.95)")
        if aggregation and aggregation != "percentile" and value is not None:
            raise ValueError("'p' only applies to aggregation 'percentile'")
        return value

    @field_validator("numerator", "denominator")
    @classmethod
    def _ratio_parts(cls, value: str | None, info: ValidationInfo) -> str | None:
        aggregation = info.data.get("aggregation")
        if info.field_name == "numerator" and aggregation == "ratio" and not value:
            raise ValueError(
                "aggregation 'ratio' needs a 'numerator' filter (denominator defaults to all)"
            )
        if aggregation and aggregation != "ratio" and value:
            raise ValueError(f"'{info.field_name}' only applies to aggregation 'ratio'")
        return value

    @field_validator("group_by")
    @classmethod
    def _distinct_dimensions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a dimension twice")
        return value


class MetricsFile(StrictModel):
    """The whole of `configs/metrics.yaml`."""

    metrics: list[MetricSpec] = Field(default_factory=list)
