"""Log formats a source can declare: `json`, `logfmt`, `regex`, and regex presets.

Presets are plain data (a pattern, the timestamp group and format, default field mapping and
types), so adding one needs no parser code: add an entry to `PRESETS`, an example line and its
expected event to `loglens_pipeline_tests/ingest/test_formats.py`, and a section to
`docs/formats.md`. A preset whose data is inconsistent (a mapping or field naming a group the
pattern lacks) fails at import. The parser registry in `parsers.py` turns a format into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

BASE_FORMATS = ("json", "regex", "logfmt")

# Default `mapping` of formats whose lines name their fields (json, logfmt); presets bring
# their own. `logfmt` follows the usual `msg=` convention for the message.
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    "json": {"level": "level", "service": "service", "host": "host", "message": "message"},
    "logfmt": {"level": "level", "service": "service", "host": "host", "message": "msg"},
}


@dataclass(frozen=True)
class RegexPreset:
    """A named regex layout with defaults a source may override.

    `level_pri_group` names a group holding a syslog PRI (`<34>`): when `level` is mapped to
    it, the level is derived from the severity (`PRI % 8`, see `SYSLOG_SEVERITY_LEVELS`).
    """

    pattern: str
    timestamp_field: str
    timestamp_format: str
    mapping: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    level_pri_group: str | None = None
    description: str = ""
    example: str = ""

    def __post_init__(self) -> None:
        groups = set(re.compile(self.pattern).groupindex)
        named = {
            "timestamp_field": [self.timestamp_field],
            "mapping": list(self.mapping.values()),
            "fields": list(self.fields),
            "level_pri_group": [self.level_pri_group] if self.level_pri_group else [],
        }
        for key, names in named.items():
            for name in names:
                if name not in groups:
                    raise ValueError(f"preset {key} names group {name!r}, which its pattern lacks")


# Syslog severity (PRI % 8) -> level: 0 emerg, 1 alert, 2 crit, 3 err, 4 warning, 5 notice,
# 6 info, 7 debug.
SYSLOG_SEVERITY_LEVELS = ("ERROR", "ERROR", "ERROR", "ERROR", "WARN", "INFO", "INFO", "DEBUG")

_ACCESS_PREFIX = (
    r"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "
    r'"(?P<request>(?P<method>[A-Z]+) (?P<path>\S+)[^"]*)" (?P<status>\d{3}) '
    r"(?:(?P<body_bytes_sent>\d+)|-)"  # `-` (Apache's zero bytes) is NULL, not text
)
_ACCESS_FIELDS = {
    "status": "int",
    "body_bytes_sent": "int",
    "method": "string",
    "path": "string",
    "remote_addr": "string",
}
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"

_COMBINED = RegexPreset(
    pattern=_ACCESS_PREFIX + r' "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"',
    timestamp_field="time_local",
    timestamp_format=_CLF_TIME,
    mapping={"message": "request"},
    fields={**_ACCESS_FIELDS, "http_user_agent": "string"},
    description="nginx/Apache combined access log",
    example=(
        '10.1.2.3 - - [25/Nov/2026:13:00:00 +0000] "GET /api/cart HTTP/1.1" 200 512 "-" '
        '"Mozilla/5.0"'
    ),
)

_COMMON = RegexPreset(
    pattern=_ACCESS_PREFIX + r"\s*$",
    timestamp_field="time_local",
    timestamp_format=_CLF_TIME,
    mapping={"message": "request"},
    fields=dict(_ACCESS_FIELDS),
    description="nginx/Apache common log format (CLF)",
    example='10.1.2.3 - alice [25/Nov/2026:13:00:00 +0100] "GET /index.html HTTP/1.1" 200 2326',
)

_SYSLOG_MAPPING = {"level": "pri", "host": "host", "service": "app", "message": "message"}

PRESETS: dict[str, RegexPreset] = {
    "nginx_combined": _COMBINED,
    "apache_combined": replace(_COMBINED, description="Apache combined log (nginx_combined)"),
    "nginx_common": _COMMON,
    "apache_common": replace(_COMMON, description="Apache common log format (CLF)"),
    "syslog_rfc3164": RegexPreset(
        pattern=(
            r"^(?:<(?P<pri>\d{1,3})>)?(?P<timestamp>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}) "
            r"(?P<host>\S+) (?:(?P<app>[^\s\[\]:]+)(?:\[(?P<pid>[^\]]*)\])?: ?)?"
            r"(?P<message>.*)$"
        ),
        timestamp_field="timestamp",
        timestamp_format="syslog",
        mapping=dict(_SYSLOG_MAPPING),
        fields={"app": "string", "pid": "string"},
        level_pri_group="pri",
        description="BSD syslog (RFC 3164), `<PRI>` optional; the year is inferred",
        example="<34>Nov 25 13:00:00 web-1 sshd[123]: Failed password for root",
    ),
    "syslog_rfc5424": RegexPreset(
        pattern=(
            r"^<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?:-|(?P<timestamp>\S+)) "
            r"(?:-|(?P<host>\S+)) (?:-|(?P<app>\S+)) (?:-|(?P<procid>\S+)) "
            r"(?:-|(?P<msgid>\S+)) "
            r"(?:-|(?P<structured_data>(?:\[(?:[^\]\\]|\\.)*\])+))"
            "(?: \ufeff?(?P<message>.*))?$"  # the message may start with a BOM
        ),
        timestamp_field="timestamp",
        timestamp_format="iso8601",
        mapping=dict(_SYSLOG_MAPPING),
        fields={"app": "string", "procid": "string", "msgid": "string"},
        level_pri_group="pri",
        description="IETF syslog (RFC 5424); `-` (nil) values are NULL",
        example=(
            '<165>1 2026-11-25T13:00:00.123Z web-1 cart 123 ID47 [origin ip="10.1.2.3"] '
            "order placed"
        ),
    ),
    "level_text": RegexPreset(
        pattern=(
            r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
            r"\s+(?P<level>[A-Za-z]+)\s+(?:\[(?P<service>[^\]]+)\]\s+)?(?P<message>.*)$"
        ),
        timestamp_field="ts",
        timestamp_format="iso8601",
        mapping={"level": "level", "service": "service", "message": "message"},
        description="`<timestamp> <LEVEL> [service] message`, as Python and Java loggers write",
        example="2026-11-25 13:00:00,123 ERROR [payments] charge failed: card declined",
    ),
}


def known_formats() -> list[str]:
    """Every value a source's `format` key accepts."""
    return [*BASE_FORMATS, *sorted(PRESETS)]


def json_path(field: str) -> str:
    """`http.status` -> `$."http"."status"`, quoting each key so any name is safe.

    A value that already is a JSON path (starts with `$`) is returned unchanged, so a key that
    itself contains dots can be reached as `$."http.method"`.
    """
    if field.startswith("$"):
        return field
    return "$." + ".".join('"' + part.replace('"', '\\"') + '"' for part in field.split("."))


def key_json_path(key: str) -> str:
    """The JSON path of one top-level key taken whole, dots included: `a.b` -> `$."a.b"`."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
