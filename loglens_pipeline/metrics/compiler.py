"""Metric spec -> DuckDB SQL over `raw.events`: tumbling or sliding windows, groups, one statement.

Windows are named by their end: every `step` inside the partition hour ends a window of `size`
(`(H, H+1h]`), so a tumbling window is the case `size == step` and a sliding window reaches back
into the previous hour by `size - step`. Each event is assigned to every window containing it
(at most `size / step` of them) by arithmetic, without a join. An event exactly on a boundary
belongs to the window starting there (windows are closed at the start, open at the end).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from loglens_pipeline.config.metrics import MetricSpec
from loglens_pipeline.config.models import SourceConfig
from loglens_pipeline.ingest.parsers import field_column_spec, sql_literal
from loglens_pipeline.metrics.expressions import ExpressionError, FieldResolver, compile_expression
from loglens_pipeline.warehouse.schema import FieldColumn

COMPILER_VERSION = "1"
COLUMNS = ("source", "tenant", "service", "host", "level", "message", "event_time")
RESERVED = ("hour", "bucket_start", "bucket_end", "value", "events", "group_rank")


def field_types(sources: list[SourceConfig]) -> dict[str, str]:
    """Typed fields the metric may use: the union over its sources (types must agree)."""
    types: dict[str, str] = {}
    for source in sources:
        for name, kind in source.field_types().items():
            if types.setdefault(name, kind) != kind:
                raise ValueError(
                    f"field {name!r} is {types[name]} in one source and {kind} in another"
                )
    return types


def field_locations(sources: list[SourceConfig]) -> dict[str, dict[str, str]]:
    """Field name -> {source name: where the field is in `attrs`} (renamed fields differ)."""
    locations: dict[str, dict[str, str]] = {}
    for source in sources:
        for name, path in source.field_paths().items():
            locations.setdefault(name, {})[source.name] = path
    return locations


def field_resolver(
    sources: list[SourceConfig], used: dict[str, FieldColumn] | None = None
) -> FieldResolver:
    """Event columns by name; declared fields as the typed column of their source.

    Ingestion stores each declared field in a typed column (`field_column`), and a column added
    later is filled from `attrs` for the rows already there, so metrics never parse `attrs`.
    `used` collects the typed columns referenced (by name).
    """
    types = field_types(sources)
    locations = field_locations(sources)

    def by_source(values: dict[str, str]) -> str:
        if len(set(values.values())) == 1:
            return next(iter(values.values()))
        # Each source has its own column for the field.
        cases = " ".join(f"WHEN {sql_literal(src)} THEN {v}" for src, v in values.items())
        return f"CASE source {cases} END"

    def resolve(path: tuple[str, ...]) -> str | None:
        name = ".".join(path)
        if len(path) == 1 and name in COLUMNS:
            return f'"{name}"'
        kind = types.get(name)
        if kind is None:
            return None
        columns = {
            src: field_column_spec(src, name, where, kind) for src, where in locations[name].items()
        }
        if used is not None:
            used.update({column.name: column for column in columns.values()})
        return by_source({src: f'"{column.name}"' for src, column in columns.items()})

    return resolve


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"


def _interval(value: timedelta) -> str:
    return f"INTERVAL {int(value.total_seconds())} SECOND"


@dataclass(frozen=True)
class CompiledMetric:
    """A metric ready to run: checked expressions compiled to SQL, and its code version."""

    spec: MetricSpec
    filter_sql: str
    value_sql: str | None
    numerator_sql: str | None
    groups: tuple[tuple[str, str], ...]  # (column name, SQL)
    code_version: str
    field_columns: tuple[FieldColumn, ...] = ()  # the typed raw.events columns it reads

    @property
    def group_columns(self) -> list[str]:
        return [name for name, _ in self.groups]

    @property
    def columns(self) -> list[str]:
        return ["hour", "bucket_start", "bucket_end", *self.group_columns, "value", "events"]

    @property
    def column_types(self) -> list[str]:
        """DuckDB types of `columns`: UTC timestamps in microseconds, which BI drivers read."""
        return ["TIMESTAMP"] * 3 + ["VARCHAR"] * len(self.groups) + ["DOUBLE", "BIGINT"]

    @property
    def zero_filled(self) -> bool:
        """Counts and rates report empty windows as 0, so drops to zero are visible."""
        return self.spec.aggregation in ("count", "rate")

    def _aggregate(self) -> str:
        spec = self.spec
        size_seconds = int(spec.window.size_delta.total_seconds())
        return {
            "count": "count(*)",
            "rate": f"count(*) / {size_seconds}",
            "sum": "sum(v)",
            "avg": "avg(v)",
            "min": "min(v)",
            "max": "max(v)",
            "percentile": f"quantile_cont(v, {spec.p})",
            "unique_count": "nullif(count(DISTINCT v), 0)",  # no values: no point, like sum
            "ratio": "count(*) FILTER (WHERE num) / count(*)",
        }[spec.aggregation]

    def ranked_sql(self, start: datetime, end: datetime) -> str:
        """Rows for the windows ending in `(start, end]`, with each group's rank in its hour.

        `start` and `end` are hour boundaries (UTC, naive). Rank 1 is the group with most events
        in the hour; the caller keeps ranks up to `max_groups` and reports the rest.
        """
        spec = self.spec
        size, step = spec.window.size_delta, spec.window.step_delta
        per_event = int(size / step)
        sources = ", ".join(sql_literal(s) for s in spec.source)
        group_select = "".join(f', {sql} AS "{name}"' for name, sql in self.groups)
        names = "".join(f', "{name}"' for name in self.group_columns)
        value = ""
        if self.value_sql and spec.aggregation == "unique_count":
            value = f", {self.value_sql} AS v"
        elif self.value_sql:
            value = f", CAST({self.value_sql} AS DOUBLE) AS v"
        numerator = f", coalesce({self.numerator_sql}, false) AS num" if self.numerator_sql else ""
        windows = (
            f"time_bucket({_interval(step)}, event_time) + {_interval(step)}"
            if per_event == 1
            else f"time_bucket({_interval(step)}, event_time) + {_interval(step)} * (1 + k.i)"
        )
        spread = "" if per_event == 1 else f", range({per_event}) AS k(i)"
        events = f"""
            SELECT {windows} AS bucket_end{names}{", v" if value else ""}{", num" if numerator else ""}
            FROM (
                SELECT event_time{group_select}{value}{numerator}
                FROM raw.events
                WHERE source IN ({sources})
                  AND event_time >= {_ts(start)} - {_interval(size - step)}
                  AND event_time < {_ts(end)}
                  AND ({self.filter_sql})
            ){spread}"""
        aggregated = f"""
            SELECT bucket_end{names}, {self._aggregate()} AS value, count(*) AS events
            FROM ({events})
            WHERE bucket_end > {_ts(start)} AND bucket_end <= {_ts(end)}
            GROUP BY ALL"""
        if self.zero_filled:
            # Every window of the range, for every group seen in that hour, with 0 when empty.
            hour_of = f"date_trunc('hour', bucket_end - {_interval(step)})"
            frame = f"""
                SELECT ends.bucket_end{names}
                FROM (SELECT unnest(generate_series({_ts(start)} + {_interval(step)}, {_ts(end)},
                                                    {_interval(step)})) AS bucket_end) AS ends
                {"JOIN (SELECT DISTINCT " + hour_of + " AS hour" + names + " FROM agg) AS g ON g.hour = " + hour_of.replace("bucket_end", "ends.bucket_end") if self.groups else ""}"""
            # IS NOT DISTINCT FROM: a NULL group (field absent) is a group like any other.
            matches = " AND ".join(
                ["f.bucket_end = agg.bucket_end"]
                + [f'f."{g}" IS NOT DISTINCT FROM agg."{g}"' for g in self.group_columns]
            )
            rows = f"""
                SELECT f.*, coalesce(agg.value, 0) AS value, coalesce(agg.events, 0) AS events
                FROM ({frame}) AS f LEFT JOIN agg ON {matches}"""
        else:
            rows = "SELECT * FROM agg WHERE value IS NOT NULL"
        return f"""
            WITH agg AS MATERIALIZED ({aggregated})
            SELECT date_trunc('hour', bucket_end - {_interval(step)}) AS hour,
                   bucket_end - {_interval(size)} AS bucket_start,
                   bucket_end{names}, CAST(value AS DOUBLE) AS value, CAST(events AS BIGINT) AS events,
                   dense_rank() OVER (
                       PARTITION BY date_trunc('hour', bucket_end - {_interval(step)})
                       ORDER BY group_events DESC{names}
                   ) AS group_rank
            FROM (
                SELECT *, sum(events) OVER (
                    PARTITION BY date_trunc('hour', bucket_end - {_interval(step)}){names}
                ) AS group_events
                FROM ({rows})
            )"""


class MetricCompileError(ValueError):
    """A metric that cannot be compiled; `key` is the offending key of the metric."""

    def __init__(self, key: str, reason: str):
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


def compile_metric(spec: MetricSpec, sources: dict[str, SourceConfig]) -> CompiledMetric:
    """Check a metric against its sources and compile it; errors name the key and the part."""
    unknown = [name for name in spec.source if name not in sources]
    if unknown:
        raise MetricCompileError(
            "source", f"unknown source {unknown[0]!r}; sources: {', '.join(sources)}"
        )
    chosen = [sources[name] for name in spec.source]
    typed_columns: dict[str, FieldColumn] = {}
    try:
        resolve = field_resolver(chosen, typed_columns)
    except ValueError as exc:
        raise MetricCompileError("source", str(exc)) from None
    context = f"metric {spec.name!r}"

    def compiled(key: str, text: str | None, kind: str = "filter") -> str | None:
        if text is None:
            return None
        try:
            return compile_expression(text, resolve, context=f"{context} {key}", kind=kind)
        except ExpressionError as exc:
            raise MetricCompileError(key, str(exc)) from None

    conditions = [
        c for c in (compiled("filter", spec.filter), compiled("denominator", spec.denominator)) if c
    ]
    value_sql = compiled("field", spec.field, "value")
    if spec.field and spec.aggregation not in ("unique_count",):
        kind = "string" if spec.field in COLUMNS[:-1] else field_types(chosen).get(spec.field)
        if kind in ("string", "bool", "timestamp"):
            raise MetricCompileError(
                "field", f"{spec.field!r} is a {kind} field; '{spec.aggregation}' needs a number"
            )
    groups = []
    for index, dimension in enumerate(spec.group_by):
        column = dimension.replace(".", "_")
        if column in RESERVED:
            raise MetricCompileError(
                f"group_by[{index}]", f"{dimension!r} clashes with the reserved column {column!r}"
            )
        sql = compiled(f"group_by[{index}]", dimension, "value")
        groups.append((column, f"CAST({sql} AS VARCHAR)"))
    locations = field_locations(chosen)
    used = sorted(
        (name, kind, sorted(locations[name].items())) for name, kind in field_types(chosen).items()
    )
    fingerprint = f"{COMPILER_VERSION}|{spec.model_dump_json()}|{used}"
    return CompiledMetric(
        spec=spec,
        filter_sql=" AND ".join(f"({c})" for c in conditions) or "true",
        value_sql=value_sql,
        numerator_sql=compiled("numerator", spec.numerator),
        groups=tuple(groups),
        code_version=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
        field_columns=tuple(column for _, column in sorted(typed_columns.items())),
    )
