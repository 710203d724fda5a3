"""Exactly-once ingestion: new bytes of a file -> events + quarantine + offset, one transaction per chunk.

The committed offset of every file lives in `raw.file_offsets`, beside the rows it describes.
Each chunk's events, quarantined lines and new offset commit together, so a crash leaves the
old offset and a re-run reads the same bytes again: no line is lost or counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from loglens_pipeline.config.models import IngestConfig, SourceConfig
from loglens_pipeline.ingest.identity import FileState
from loglens_pipeline.ingest.lines import LineBatch, read_batches
from loglens_pipeline.ingest.parsers import parse_sql


class OffsetConflictError(RuntimeError):
    """The committed offset moved under us: another writer ingested the same file."""


@dataclass
class FileResult:
    """What one file contributed in one ingestion."""

    source: str
    file_id: str
    path: str
    start_offset: int
    end_offset: int
    lines: int = 0
    events: int = 0
    quarantined: int = 0
    chunks: int = 0
    hours: set[datetime] = field(default_factory=set)

    @property
    def bytes(self) -> int:
        return self.end_offset - self.start_offset


@dataclass
class IngestReport:
    """Totals over all files of one ingestion, for run metadata and the CLI."""

    files: list[FileResult]
    seconds: float

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def hours(self) -> list[datetime]:
        return sorted(set().union(*(f.hours for f in self.files)))

    @property
    def lines_per_second(self) -> float:
        return self.total("lines") / self.seconds if self.seconds > 0 else 0.0


def committed_offset(conn: duckdb.DuckDBPyConnection, file_id: str) -> int | None:
    # fetchall, not fetchone: DuckDB keeps a partly fetched result open and refuses more work.
    rows = conn.execute(
        "SELECT committed_offset FROM raw.file_offsets WHERE file_id = ?", [file_id]
    ).fetchall()
    return int(rows[0][0]) if rows else None


def _commit_batch(
    conn: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    state: FileState,
    batch: LineBatch,
    parse: str,
    ingested_at: datetime,
) -> tuple[int, int, set]:
    conn.register("batch", batch.table)
    try:
        # Parse once into a temporary table, then route rows to events or quarantine.
        conn.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {parse}")
    finally:
        conn.unregister("batch")
    path = str(state.path)
    conn.execute("BEGIN TRANSACTION")
    try:
        if committed_offset(conn, state.file_id) not in (None, batch.start_offset):
            raise OffsetConflictError(f"offset of {path} moved during ingestion")
        events = conn.execute(
            """INSERT INTO raw.events
               SELECT event_time, ?, ?, service, host, level, message, attrs, ?, ?, byte_offset, ?
               FROM parsed WHERE reason IS NULL""",
            [source.name, source.tenant, state.file_id, path, ingested_at],
        ).fetchall()[0][0]
        quarantined = conn.execute(
            """INSERT INTO raw.quarantine
               SELECT ?, ?, ?, byte_offset, reason, raw_line, raw_bytes, ?
               FROM parsed WHERE reason IS NOT NULL""",
            [source.name, state.file_id, path, ingested_at],
        ).fetchall()[0][0]
        conn.execute(
            """INSERT INTO raw.file_offsets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (file_id) DO UPDATE SET
                   path = excluded.path, device = excluded.device, inode = excluded.inode,
                   committed_offset = excluded.committed_offset,
                   lines = file_offsets.lines + excluded.lines,
                   events = file_offsets.events + excluded.events,
                   quarantined = file_offsets.quarantined + excluded.quarantined,
                   last_ingested_at = excluded.last_ingested_at""",
            [
                state.file_id,
                source.name,
                path,
                state.device,
                state.inode,
                batch.end_offset,
                batch.lines,
                events,
                quarantined,
                ingested_at,
                ingested_at,
            ],
        ).fetchall()
        hours = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT date_trunc('hour', event_time) FROM parsed WHERE reason IS NULL"
            ).fetchall()
        }
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return events, quarantined, hours


def ingest_file(
    conn: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    state: FileState,
    settings: IngestConfig,
    *,
    ingested_at: datetime,
    after_commit: Callable[[FileResult], None] | None = None,
) -> FileResult:
    """Ingest the bytes of one file after its committed offset, up to its last complete line.

    `after_commit` is called after each committed chunk (progress reporting, fault injection).
    """
    start = committed_offset(conn, state.file_id) or 0
    result = FileResult(source.name, state.file_id, str(state.path), start, start)
    if state.size <= start:
        return result
    parse = parse_sql(source)
    for batch in read_batches(
        state.path, start, chunk_bytes=settings.chunk_bytes, max_line_bytes=settings.max_line_bytes
    ):
        events, quarantined, hours = _commit_batch(conn, source, state, batch, parse, ingested_at)
        result.end_offset = batch.end_offset
        result.lines += batch.lines
        result.events += events
        result.quarantined += quarantined
        result.chunks += 1
        result.hours |= hours
        if after_commit is not None:
            after_commit(result)
    conn.execute("DROP TABLE IF EXISTS parsed")
    return result


def ingest_files(
    conn: duckdb.DuckDBPyConnection,
    work: Iterable[tuple[SourceConfig, FileState]],
    settings: IngestConfig,
    *,
    ingested_at: datetime,
    after_commit: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Ingest many files one after another; the report sums what each contributed."""
    started = time.perf_counter()
    results = [
        ingest_file(
            conn, source, state, settings, ingested_at=ingested_at, after_commit=after_commit
        )
        for source, state in work
    ]
    return IngestReport(results, time.perf_counter() - started)
