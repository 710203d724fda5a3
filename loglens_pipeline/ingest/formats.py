"""Log formats a source can declare: `json`, `regex`, and regex presets for common layouts.

Presets are plain data (a pattern, the timestamp group and format, default field mapping and
types), so adding one needs no parser code. The parser registry in `parsers.py` turns a format
into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_FORMATS = ("json", "regex")


@dataclass(frozen=True)
class RegexPreset:
    """A named regex layout with defaults a source may override."""

    pattern: str
    timestamp_field: str
    timestamp_format: str
    mapping: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    description: str = ""
    example: str = ""


PRESETS: dict[str, RegexPreset] = {
    "nginx_combined": RegexPreset(
        pattern=(
            r"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "
            r'"(?P<request>(?P<method>[A-Z]+) (?P<path>\S+)[^"]*)" (?P<status>\d{3}) '
            r'(?P<body_bytes_sent>\d+|-) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"'
        ),
        timestamp_field="time_local",
        timestamp_format="%d/%b/%Y:%H:%M:%S %z",
        mapping={"message": "request"},
        fields={
            "status": "int",
            "body_bytes_sent": "int",
            "method": "string",
            "path": "string",
            "remote_addr": "string",
            "http_user_agent": "string",
        },
        description="nginx/Apache combined access log",
        example=(
            '10.1.2.3 - - [25/Nov/2026:13:00:00 +0000] "GET /api/cart HTTP/1.1" 200 512 "-" '
            '"Mozilla/5.0"'
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
