"""Parsers: one SQL statement per source that turns a batch of lines into events or reasons.

The statement reads the relation `batch` (columns of `lines.split_lines`) and returns, for every
line, either an event (`reason` NULL) or a quarantine reason, in one vectorized pass. Formats
register a function in `PARSERS`; presets are regex layouts from `formats.py`. The statement
expects the session time zone to be UTC (the warehouse connection sets it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from loglens_pipeline.config.models import SourceConfig, TimestampSpec
from loglens_pipeline.ingest.formats import SYSLOG_SEVERITY_LEVELS, json_path
from loglens_pipeline.warehouse.schema import FieldColumn, field_column

__all__ = [
    "FIELD_SQL_TYPES",
    "OUTPUT_COLUMNS",
    "PARSERS",
    "cast_sql",
    "field_column_spec",
    "field_column_specs",
    "field_columns",
    "json_path",
    "parse_sql",
    "sql_literal",
]

OUTPUT_COLUMNS = (
    "byte_offset", "event_time", "service", "host", "level", "message", "attrs",
    "reason", "raw_line", "raw_bytes",
)  # fmt: skip

# The time `syslog` timestamps (no year) are placed relative to; tests pin it to a literal.
NOW_SQL = "now()"

# DuckDB types of typed fields; `cast_sql` is what ingestion checks and metrics read alike.
FIELD_CASTS = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}
FIELD_SQL_TYPES = {**FIELD_CASTS, "string": "VARCHAR"}

# Timestamps outside years 1..9999 are unreadable rather than an error that fails the batch.
_MIN_EPOCH_S, _MAX_EPOCH_S = -62135596800, 253402300799


def sql_literal(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def cast_sql(text: str, kind: str) -> str:
    """SQL reading the text of a typed field as its type: NULL when it does not cast."""
    return text if kind == "string" else f"TRY_CAST({text} AS {FIELD_CASTS[kind]})"


def _epoch_seconds(seconds: str) -> str:
    return (
        f"to_timestamp(CASE WHEN {seconds} BETWEEN {_MIN_EPOCH_S} AND {_MAX_EPOCH_S} "
        f"THEN {seconds} END)"
    )


def _epoch_micros(micros: str) -> str:
    low, high = _MIN_EPOCH_S * 1_000_000, _MAX_EPOCH_S * 1_000_000 + 999_999
    return f"make_timestamp(CASE WHEN {micros} BETWEEN {low} AND {high} THEN {micros} END)"


def _syslog_time(raw: str, local: str) -> str:
    """`Nov 25 13:00:00` (or `Nov  5 ...`): this UTC year, or the last one if that is future.

    An event more than a day ahead of `NOW_SQL` is taken to be from the previous year (a
    December line read in January). Feb 29 of a non-leap current year falls back likewise.
    """
    text = f"regexp_replace(trim({raw}), '\\s+', ' ', 'g')"
    year = f"year(timezone('UTC', {NOW_SQL}))"

    def in_year(y: str) -> str:
        return f"timezone({local}, try_strptime(CAST({y} AS VARCHAR) || ' ' || {text}, '%Y %b %d %H:%M:%S'))"

    this_year, last_year = in_year(year), in_year(f"{year} - 1")
    return (
        f"CASE WHEN {this_year} <= {NOW_SQL} + INTERVAL 1 DAY THEN {this_year} ELSE {last_year} END"
    )


def timestamp_sql(raw: str, spec: TimestampSpec, timezone: str) -> str:
    """SQL giving the UTC `TIMESTAMP` of a raw text value, NULL when it cannot be read."""
    local = sql_literal(timezone)
    if spec.format == "epoch_s":
        return _epoch_seconds(f"TRY_CAST({raw} AS DOUBLE)") + "::TIMESTAMP"
    if spec.format == "epoch_ms":
        return _epoch_seconds(f"(TRY_CAST({raw} AS DOUBLE) / 1000)") + "::TIMESTAMP"
    if spec.format == "epoch_us":
        return _epoch_micros(f"TRY_CAST({raw} AS BIGINT)")
    if spec.format == "epoch_ns":
        return _epoch_micros(f"(TRY_CAST({raw} AS BIGINT) // 1000)")
    if spec.format == "syslog":
        tstz = _syslog_time(raw, local)
    elif spec.format == "iso8601":
        text = f"replace({raw}, ',', '.')"  # Python and Java loggers write 13:00:00,123
        tstz = f"TRY_CAST({text} AS TIMESTAMPTZ)"
        if timezone != "UTC":
            # Values without an offset are local time of the source.
            tstz = (
                f"CASE WHEN regexp_matches({raw}, '\\d:\\d\\d(:\\d\\d([.,]\\d+)?)?\\s*(Z|[+-]\\d\\d(:?\\d\\d)?)$') "
                f"THEN {tstz} "
                f"ELSE timezone({local}, TRY_CAST({text} AS TIMESTAMP)) END"
            )
    elif "%z" in spec.format or "%Z" in spec.format:
        tstz = f"try_strptime({raw}, {sql_literal(spec.format)})"
    else:
        tstz = f"timezone({local}, try_strptime({raw}, {sql_literal(spec.format)}))"
    utc = f"CAST({tstz} AS TIMESTAMP)"
    if spec.format == "iso8601":
        # Values in UTC (`...Z`, most loggers' form) cast straight to TIMESTAMP: 2.5x faster than
        # through TIMESTAMPTZ, and the same instant. Anything that cast refuses takes the general
        # path (it must not see other offsets: a TIMESTAMP cast drops them silently).
        return f"CASE WHEN ends_with({raw}, 'Z') THEN coalesce(TRY_CAST({raw} AS TIMESTAMP), {utc}) ELSE {utc} END"
    return utc


def _level_sql(raw: str, from_pri: bool) -> str:
    if from_pri:
        names = ", ".join(sql_literal(level) for level in SYSLOG_SEVERITY_LEVELS)
        return f"[{names}][TRY_CAST({raw} AS INTEGER) % 8 + 1]"
    return f"CASE upper({raw}) WHEN 'WARNING' THEN 'WARN' ELSE upper({raw}) END"


def _declared_fields(source: SourceConfig) -> list[tuple[str, str, str]]:
    """(name, path, type) of every typed field of the source."""
    return [(name, spec.path, spec.type) for name, spec in source.field_specs().items()]


def field_column_spec(source: str, name: str, path: str, kind: str) -> FieldColumn:
    """The column of one declared field of `source`, and how `attrs` holds its value."""
    in_attrs = f"json_extract_string(attrs, {sql_literal(json_path(path))})"
    return FieldColumn(
        field_column(source, name, path, kind),
        FIELD_SQL_TYPES[kind],
        source,
        cast_sql(in_attrs, kind),
    )


def field_column_specs(source: SourceConfig) -> list[FieldColumn]:
    """The `raw.events` columns holding the source's typed fields."""
    return [field_column_spec(source.name, *field) for field in _declared_fields(source)]


def field_columns(source: SourceConfig) -> dict[str, str]:
    """The `raw.events` columns holding the source's typed fields: column name -> SQL type."""
    return {column.name: column.sql_type for column in field_column_specs(source)}


def _field_columns(source: SourceConfig, get: Callable[[str], str]) -> str:
    """The raw text of every declared field as columns `__f0`, `__f1`, ... (or nothing)."""
    return "".join(
        f", {get(path)} AS __f{i}" for i, (_, path, _) in enumerate(_declared_fields(source))
    )


def _finish(source: SourceConfig, fields_sql: str) -> str:
    """Common tail: event time, canonical columns and the final reason for every line.

    `fields_sql` yields byte_offset, line, raw_line, raw_bytes, reason0 (format-level reason),
    ts_raw, level_raw, service_raw, host_raw, message_raw, attrs, and the raw text `__f<i>` of
    each field of `_declared_fields`. The result has `OUTPUT_COLUMNS`, then `field_columns`.
    """
    spec = source.timestamp_spec()
    service = "service_raw"
    if source.service is not None:
        service = f"coalesce(service_raw, {sql_literal(source.service)})"
    declared = _declared_fields(source)
    # A field that is present (not NULL, not empty) but does not cast quarantines the line.
    bad_fields = "".join(
        f"WHEN __f{i} <> '' AND {cast_sql(f'__f{i}', kind)} IS NULL "
        f"THEN {sql_literal('bad_field:' + name)} "
        for i, (name, _, kind) in enumerate(declared)
        if source.on_cast_error == "quarantine" and kind != "string"
    )
    # Typed values are stored once here, so metrics read a column instead of parsing `attrs`.
    typed = "".join(
        f', {cast_sql(f"__f{i}", kind)} AS "{field_column(source.name, name, path, kind)}"'
        for i, (name, path, kind) in enumerate(declared)
    )
    return f"""
        SELECT byte_offset,
               event_time,
               {service} AS service,
               host_raw AS host,
               {_level_sql("level_raw", source.level_from_pri())} AS level,
               message_raw AS message,
               attrs,
               reason,
               coalesce(raw_line, CASE WHEN reason IS NOT NULL THEN line END) AS raw_line,
               raw_bytes{typed}
        FROM (
            SELECT *,
                   coalesce(reason0,
                            CASE WHEN ts_raw IS NULL THEN 'missing_timestamp'
                                 WHEN event_time IS NULL THEN 'bad_timestamp'
                                 {bad_fields}END) AS reason
            FROM (
                SELECT *, {timestamp_sql("ts_raw", spec, source.timezone)} AS event_time
                FROM ({fields_sql})
            )
        )"""


def _mapped(source: SourceConfig, column: str, get: Callable[[str], str]) -> str:
    field = source.field_mapping().get(column)
    return get(field) if field else "NULL::VARCHAR"


def _canonical(source: SourceConfig, get: Callable[[str], str]) -> str:
    """ts_raw, the four *_raw columns and the checked fields, read with `get`."""
    return (
        f"{get(source.timestamp_spec().field)} AS ts_raw, "
        f"{_mapped(source, 'level', get)} AS level_raw, "
        f"{_mapped(source, 'service', get)} AS service_raw, "
        f"{_mapped(source, 'host', get)} AS host_raw, "
        f"{_mapped(source, 'message', get)} AS message_raw"
        f"{_field_columns(source, get)}"
    )


def json_parser(source: SourceConfig) -> str:
    """JSON lines: one object per line; nested fields by dotted path."""
    wanted = [source.timestamp_spec().field]
    wanted += [
        f
        for f in (source.field_mapping().get(c) for c in ("level", "service", "host", "message"))
        if f
    ]
    wanted += [path for _, path, _ in _declared_fields(source)]
    paths = list(dict.fromkeys(json_path(field) for field in wanted))
    index = {path: i + 1 for i, path in enumerate(paths)}

    def get(field: str) -> str:
        return f"f[{index[json_path(field)]}]"

    fields_sql = f"""
        SELECT *, {_canonical(source, get)},
               CASE WHEN reason0 IS NULL THEN line END AS attrs
        FROM (
            SELECT *, CASE WHEN reason0 IS NULL
                           THEN json_extract_string(line, [{", ".join(map(sql_literal, paths))}])
                      END AS f
            FROM (
                SELECT byte_offset, line, raw_line, raw_bytes,
                       CASE WHEN pre_reason IS NOT NULL THEN pre_reason
                            WHEN json_valid(line) THEN NULL
                            WHEN trim(line) = '' THEN 'blank_line'
                            ELSE 'invalid_json' END AS reason0
                FROM batch
            )
        )"""
    return _finish(source, fields_sql)


# One logfmt pair: a key, then optionally `=` and a quoted value (with `\"` and `\\` escapes)
# or a bare value up to the next whitespace. No capture groups: RE2 then finds the pairs with
# its fast matcher, and keys and values are split off with string functions. A line has a
# `key=value` pair exactly when some key character is directly followed by `=`.
LOGFMT_PAIR = r'[^\s="]+(?:=(?:"(?:[^"\\]|\\.)*"|\S*))?'
_LOGFMT_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LOGFMT_HAS_PAIR = r'[^\s="]='


def logfmt_parser(source: SourceConfig) -> str:
    """logfmt: `key=value key="quoted \\"value\\"" bare_key`; attrs holds every pair as text.

    A bare key (no `=`) is `"true"`; a key given twice keeps its first value. A line without
    any `key=value` pair is `no_match`. Mapping, timestamp and fields name keys whole.
    """
    value = "CASE WHEN NOT contains(s, '=') THEN 'true' ELSE substr(s, strpos(s, '=') + 1) END"
    unquoted = (
        "CASE WHEN NOT starts_with(s, '\"') THEN s "
        f"WHEN NOT regexp_full_match(s, {sql_literal(_LOGFMT_QUOTED)}) THEN s "
        "WHEN contains(s, '\\') THEN regexp_replace(s[2:-2], '\\\\([\"\\\\])', '\\1', 'g') "
        "ELSE s[2:-2] END"
    )

    def get(key: str) -> str:
        return f"nullif(v[list_position(k, {sql_literal(key)})], '')"

    fields_sql = f"""
        SELECT *, {_canonical(source, get)},
               CASE WHEN reason0 IS NULL THEN
                   '{{' || array_to_string(list_transform(k, lambda key, i:
                       CASE WHEN list_position(k, key) = i
                            THEN to_json(key) || ':' || to_json(v[i]) END), ',') || '}}'
               END AS attrs
        FROM (
            SELECT byte_offset, line, raw_line, raw_bytes, k,
                   list_transform(v, lambda s: {unquoted}) AS v,
                   CASE WHEN pre_reason IS NOT NULL THEN pre_reason
                        WHEN trim(line) = '' THEN 'blank_line'
                        WHEN NOT regexp_matches(line, {sql_literal(_LOGFMT_HAS_PAIR)})
                             THEN 'no_match' END AS reason0
            FROM (
                SELECT *, list_transform(tokens, lambda s: split_part(s, '=', 1)) AS k,
                          list_transform(tokens, lambda s: {value}) AS v
                FROM (
                    SELECT *, CASE WHEN pre_reason IS NULL
                                   THEN regexp_extract_all(line, {sql_literal(LOGFMT_PAIR)})
                              END AS tokens
                    FROM batch
                )
            )
        )"""
    return _finish(source, fields_sql)


def regex_parser(source: SourceConfig) -> str:
    """Regex with named groups (or a preset layout); a line that does not match is quarantined."""
    pattern = source.effective_pattern()
    assert pattern is not None
    compiled = re.compile(pattern)
    # DuckDB names capture groups by position: the whole match first, then each group in order.
    by_index = {index: name for name, index in compiled.groupindex.items()}
    names = ["__match"] + [by_index.get(i, f"__group{i}") for i in range(1, compiled.groups + 1)]
    names_sql = ", ".join(sql_literal(n) for n in names)

    def get(field: str) -> str:
        return f"nullif(m.{field}, '')"

    attrs = ", ".join(f"{sql_literal(name)}, {get(name)}" for name in compiled.groupindex)
    fields_sql = f"""
        SELECT *, {_canonical(source, get)},
               CASE WHEN reason0 IS NULL THEN json_object({attrs})::VARCHAR END AS attrs
        FROM (
            SELECT byte_offset, line, raw_line, raw_bytes, m,
                   CASE WHEN pre_reason IS NOT NULL THEN pre_reason
                        WHEN m.__match <> '' THEN NULL
                        WHEN trim(line) = '' THEN 'blank_line'
                        ELSE 'no_match' END AS reason0
            FROM (
                SELECT *, CASE WHEN pre_reason IS NULL
                               THEN regexp_extract(line, {sql_literal("(" + pattern + ")")}, [{names_sql}])
                          END AS m
                FROM batch
            )
        )"""
    return _finish(source, fields_sql)


PARSERS: dict[str, Callable[[SourceConfig], str]] = {
    "json": json_parser,
    "logfmt": logfmt_parser,
    "regex": regex_parser,
}


def parse_sql(source: SourceConfig) -> str:
    """The parsing statement for a source: its format's parser, presets being regex layouts."""
    return PARSERS.get(source.format, regex_parser)(source)
