"""Exactly-once ingestion: new bytes of a file -> events + quarantine + offset, one transaction per chunk.

The committed offset of every file lives in `raw.file_offsets`, beside the rows it describes.
Each chunk's events, quarantined lines and new offset commit together, so a crash leaves the
old offset and a re-run reads the same bytes again: no line is lost or counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

import duckdb

from loglens_pipeline.config.models import IngestConfig, SourceConfig
from loglens_pipeline.ingest.identity import (
    READ_ERRORS,
    FileState,
    open_log,
    read_span,
    state_of,
    tail_hash,
)
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
    status: str = "continues"

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


@dataclass(frozen=True)
class Resolution:
    """Which known file (generation) this file on disk continues, and from which offset."""

    file_id: str
    generation: int
    start: int
    status: str  # new | continues | rewritten
    tail: bytes = b""  # the bytes just before `start`, still expected there while reading


def committed_offset(conn: duckdb.DuckDBPyConnection, file_id: str) -> int | None:
    # fetchall, not fetchone: DuckDB keeps a partly fetched result open and refuses more work.
    rows = conn.execute(
        "SELECT committed_offset FROM raw.file_offsets WHERE file_id = ?", [file_id]
    ).fetchall()
    return int(rows[0][0]) if rows else None


def resolve_file(conn: duckdb.DuckDBPyConnection, state: FileState, handle: BinaryIO) -> Resolution:
    """Match a file on disk to what the warehouse already committed of its fingerprint.

    A known generation continues when the bytes just before its committed offset are still in
    the file (tail checkpoint), whatever the file's name, inode or compression: a renamed or
    compressed rotation resumes where it stopped. Otherwise the content was replaced (truncated,
    copytruncate, rewritten with the same first line) and a new generation starts at 0.
    """
    rows = conn.execute(
        """SELECT file_id, generation, committed_offset, tail_hash, tail_len
           FROM raw.file_offsets WHERE fingerprint = ?
           ORDER BY (device = ? AND inode = ?) DESC, generation DESC""",
        [state.fingerprint, state.device, state.inode],
    ).fetchall()
    for file_id, generation, committed, expected_tail, tail_len in rows:
        if state.size is not None and state.size < committed:
            continue
        tail = read_span(handle, committed - tail_len, committed)
        if tail_hash(tail) == expected_tail:
            return Resolution(file_id, generation, committed, "continues", tail)
    if not rows:
        return Resolution(state.fingerprint, 0, 0, "new")
    generation = max(row[1] for row in rows) + 1
    return Resolution(f"{state.fingerprint}.{generation}", generation, 0, "rewritten")


def _commit_batch(
    conn: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    state: FileState,
    identity: Resolution,
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
        if committed_offset(conn, identity.file_id) not in (None, batch.start_offset):
            raise OffsetConflictError(f"offset of {path} moved during ingestion")
        events = conn.execute(
            """INSERT INTO raw.events
               SELECT event_time, ?, ?, service, host, level, message, attrs, ?, ?, byte_offset, ?
               FROM parsed WHERE reason IS NULL""",
            [source.name, source.tenant, identity.file_id, path, ingested_at],
        ).fetchall()[0][0]
        quarantined = conn.execute(
            """INSERT INTO raw.quarantine
               SELECT ?, ?, ?, byte_offset, reason, raw_line, raw_bytes, ?
               FROM parsed WHERE reason IS NOT NULL""",
            [source.name, identity.file_id, path, ingested_at],
        ).fetchall()[0][0]
        conn.execute(
            """INSERT INTO raw.file_offsets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (file_id) DO UPDATE SET
                   path = excluded.path, device = excluded.device, inode = excluded.inode,
                   committed_offset = excluded.committed_offset,
                   tail_hash = excluded.tail_hash, tail_len = excluded.tail_len,
                   lines = file_offsets.lines + excluded.lines,
                   events = file_offsets.events + excluded.events,
                   quarantined = file_offsets.quarantined + excluded.quarantined,
                   last_ingested_at = excluded.last_ingested_at""",
            [
                identity.file_id,
                state.fingerprint,
                identity.generation,
                source.name,
                path,
                state.device,
                state.inode,
                batch.end_offset,
                tail_hash(batch.tail),
                len(batch.tail),
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


def is_idle(state: FileState, settings: IngestConfig, now: datetime) -> bool:
    """Whether a plain file stopped growing long enough to read its unterminated last line."""
    if settings.flush_partial_after_seconds is None:
        return False
    modified = datetime.fromtimestamp(state.mtime_ns / 1e9, UTC).replace(tzinfo=None)
    return (now - modified).total_seconds() >= settings.flush_partial_after_seconds


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

    Compressed files are read to their end, last line included; a plain file's unterminated
    last line is read once the file has been idle for `flush_partial_after_seconds`.
    `after_commit` is called after each committed chunk (progress reporting, fault injection).
    """
    # One handle for identity and reading: a rename or rotation between the sensor's look and
    # this read cannot make us read one file's bytes under another file's identity.
    try:
        handle = open_log(state.path)
    except READ_ERRORS:
        return FileResult(source.name, state.file_id, str(state.path), 0, 0, status="vanished")
    with handle:
        try:
            current = state_of(handle, state.path, source.name)
        except READ_ERRORS:
            current = None
        if current is None:
            return FileResult(
                source.name, state.file_id, str(state.path), 0, 0, status="unreadable"
            )
        identity = resolve_file(conn, current, handle)
        start = identity.start
        result = FileResult(
            source.name, identity.file_id, str(state.path), start, start, status=identity.status
        )
        if current.size is not None and current.size <= start:
            return result
        flush = current.compressed or is_idle(current, settings, ingested_at)
        parse = parse_sql(source)
        batches = read_batches(
            handle,
            start,
            chunk_bytes=settings.chunk_bytes,
            max_line_bytes=settings.max_line_bytes,
            flush_tail=flush,
            # Compressed files never change; plain ones are checked before every chunk.
            expected_tail=None if current.compressed else identity.tail,
        )
        try:
            for batch in batches:
                events, quarantined, hours = _commit_batch(
                    conn, source, current, identity, batch, parse, ingested_at
                )
                result.end_offset = batch.end_offset
                result.lines += batch.lines
                result.events += events
                result.quarantined += quarantined
                result.chunks += 1
                result.hours |= hours
                if after_commit is not None:
                    after_commit(result)
        except READ_ERRORS:
            if not current.compressed:
                raise
            result.status = "incomplete"  # a compressed file still being written: next run
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
