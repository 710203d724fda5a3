"""Parsers: one SQL statement per source that turns a batch of lines into events or reasons.

The statement reads the relation `batch` (columns of `lines.split_lines`) and returns, for every
line, either an event (`reason` NULL) or a quarantine reason, in one vectorized pass. Formats
register a function in `PARSERS`; presets are regex layouts from `formats.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from loglens_pipeline.config.models import SourceConfig, TimestampSpec

OUTPUT_COLUMNS = (
    "byte_offset", "event_time", "service", "host", "level", "message", "attrs",
    "reason", "raw_line", "raw_bytes",
)  # fmt: skip


def sql_literal(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def json_path(field: str) -> str:
    """`http.status` -> `$."http"."status"`, quoting each key so any name is safe."""
    return "$." + ".".join('"' + part.replace('"', '\\"') + '"' for part in field.split("."))


def timestamp_sql(raw: str, spec: TimestampSpec, timezone: str) -> str:
    """SQL giving the UTC `TIMESTAMP` of a raw text value, NULL when it cannot be read."""
    local = sql_literal(timezone)
    if spec.format == "epoch_s":
        tstz = f"to_timestamp(TRY_CAST({raw} AS DOUBLE))"
    elif spec.format == "epoch_ms":
        tstz = f"to_timestamp(TRY_CAST({raw} AS DOUBLE) / 1000)"
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
    return f"CAST({tstz} AS TIMESTAMP)"


def _level_sql(raw: str) -> str:
    return f"CASE upper({raw}) WHEN 'WARNING' THEN 'WARN' ELSE upper({raw}) END"


def _finish(source: SourceConfig, fields_sql: str) -> str:
    """Common tail: event time, canonical columns and the final reason for every line.

    `fields_sql` yields byte_offset, line, raw_line, raw_bytes, reason0 (format-level reason),
    ts_raw, level_raw, service_raw, host_raw, message_raw and attrs.
    """
    spec = source.timestamp_spec()
    service = "service_raw"
    if source.service is not None:
        service = f"coalesce(service_raw, {sql_literal(source.service)})"
    return f"""
        SELECT byte_offset,
               event_time,
               {service} AS service,
               host_raw AS host,
               {_level_sql("level_raw")} AS level,
               message_raw AS message,
               attrs,
               reason,
               coalesce(raw_line, CASE WHEN reason IS NOT NULL THEN line END) AS raw_line,
               raw_bytes
        FROM (
            SELECT *,
                   coalesce(reason0,
                            CASE WHEN ts_raw IS NULL THEN 'missing_timestamp'
                                 WHEN event_time IS NULL THEN 'bad_timestamp' END) AS reason
            FROM (
                SELECT *, {timestamp_sql("ts_raw", spec, source.timezone)} AS event_time
                FROM ({fields_sql})
            )
        )"""


def _mapped(source: SourceConfig, column: str, get: Callable[[str], str]) -> str:
    field = source.field_mapping().get(column)
    return get(field) if field else "NULL::VARCHAR"


def json_parser(source: SourceConfig) -> str:
    """JSON lines: one object per line; nested fields by dotted path."""
    wanted = [source.timestamp_spec().field]
    wanted += [
        f
        for f in (source.field_mapping().get(c) for c in ("level", "service", "host", "message"))
        if f
    ]
    index = {field: i + 1 for i, field in enumerate(dict.fromkeys(wanted))}
    paths = ", ".join(sql_literal(json_path(field)) for field in index)

    def get(field: str) -> str:
        return f"f[{index[field]}]"

    fields_sql = f"""
        SELECT *, {get(source.timestamp_spec().field)} AS ts_raw,
               {_mapped(source, "level", get)} AS level_raw,
               {_mapped(source, "service", get)} AS service_raw,
               {_mapped(source, "host", get)} AS host_raw,
               {_mapped(source, "message", get)} AS message_raw,
               CASE WHEN reason0 IS NULL THEN line END AS attrs
        FROM (
            SELECT *, CASE WHEN reason0 IS NULL THEN json_extract_string(line, [{paths}]) END AS f
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
        SELECT *, {get(source.timestamp_spec().field)} AS ts_raw,
               {_mapped(source, "level", get)} AS level_raw,
               {_mapped(source, "service", get)} AS service_raw,
               {_mapped(source, "host", get)} AS host_raw,
               {_mapped(source, "message", get)} AS message_raw,
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


PARSERS: dict[str, Callable[[SourceConfig], str]] = {"json": json_parser, "regex": regex_parser}


def parse_sql(source: SourceConfig) -> str:
    """The parsing statement for a source: its format's parser, presets being regex layouts."""
    return PARSERS.get(source.format, regex_parser)(source)
