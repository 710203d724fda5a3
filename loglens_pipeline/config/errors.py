"""The one error type a user sees for bad configuration: file, key path, reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


def format_key_path(loc: Sequence[str | int]) -> str:
    """`("sources", 1, "timestamp", "format")` -> `sources[1].timestamp.format`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class ConfigError(ValueError):
    """One or more problems in the YAML under `configs/`, each naming file, key path and reason."""

    def __init__(self, problems: Iterable[tuple[Path | str, str, str]]):
        self.problems = [(str(file), key, reason) for file, key, reason in problems]
        lines = [f"{file}: {key}: {reason}" for file, key, reason in self.problems]
        count = len(lines)
        header = f"{count} configuration error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  - {line}" for line in lines)]))
