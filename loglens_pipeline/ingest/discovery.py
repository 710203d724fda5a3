"""Which files each source watches: its glob under the logs directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from loglens_pipeline.config.models import SourceConfig


def source_files(logs_dir: Path, source: SourceConfig) -> list[Path]:
    """Regular files matching the source's glob, in a stable order."""
    return sorted(p for p in logs_dir.glob(source.glob) if p.is_file())


def all_source_files(
    logs_dir: Path, sources: list[SourceConfig]
) -> Iterator[tuple[SourceConfig, Path]]:
    """Every (source, file) pair; a file matched by two sources is read by both."""
    for source in sources:
        for path in source_files(logs_dir, source):
            yield source, path
