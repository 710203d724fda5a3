"""Exactly-once ingestion: new bytes of a file -> events + quarantine + offset, one transaction per chunk.

The committed offset of every file lives in `raw.file_offsets`, beside the rows it describes.
Each chunk's events, quarantined lines and new offset commit together, so a crash leaves the
old offset and a re-run reads the same bytes again: no line is lost or counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import BinaryIO

import duckdb

from loglens_pipeline.config.models import IngestConfig, MultilineSpec, SourceConfig
from loglens_pipeline.ingest.identity import (
    READ_ERRORS,
    FileState,
    open_log,
    read_span,
    state_of,
    tail_hash,
)
from loglens_pipeline.ingest.lines import ROW_GROUP_ROWS, LineBatch, ReadAhead, read_batches
from loglens_pipeline.ingest.parsers import (
    field_column_specs,
    field_columns,
    parse_sql,
    sql_literal,
)
from loglens_pipeline.warehouse.schema import ensure_field_columns


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
    seconds: float = 0.0  # spent reading, parsing and committing this file

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


def _group_sql(spec: MultilineSpec) -> str:
    """Lines of `batch_lines` -> one row per event: first line, continuation lines, line count.

    A line matching `spec.start` (or a line that is not text) begins an event; at most
    `max_lines` lines form one event, the overflow is quarantined as `multiline_overflow`.
    """
    return f"""
        WITH numbered AS (
            SELECT *, sum(CASE WHEN pre_reason IS NOT NULL
                                    OR regexp_matches(line, {sql_literal(spec.start)})
                               THEN 1 ELSE 0 END)
                      OVER (ORDER BY byte_offset ROWS UNBOUNDED PRECEDING) AS grp
            FROM batch_lines
        ), parts AS (
            SELECT *, (row_number() OVER (PARTITION BY grp ORDER BY byte_offset) - 1)
                      // {spec.max_lines} AS part
            FROM numbered
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY grp, part ORDER BY byte_offset) AS rn
            FROM parts
        )
        SELECT min(byte_offset) AS byte_offset,
               CASE WHEN part = 0 THEN arg_min(line, byte_offset) END AS line,
               CASE WHEN part > 0 THEN 'multiline_overflow'
                    ELSE arg_min(pre_reason, byte_offset) END AS pre_reason,
               CASE WHEN part > 0
                    THEN string_agg(coalesce(line, raw_line), chr(10) ORDER BY byte_offset)
                    ELSE arg_min(raw_line, byte_offset) END AS raw_line,
               arg_min(raw_bytes, byte_offset) AS raw_bytes,
               string_agg(coalesce(line, raw_line), chr(10) ORDER BY byte_offset)
                   FILTER (WHERE rn > 1) AS continuation,
               count(*) AS line_count
        FROM ranked GROUP BY grp, part"""


def _parsed_sql(parse: str, multiline: MultilineSpec | None) -> str:
    """The parse of the relation `batch`: one row per event or quarantined line, `line_count`."""
    if multiline is None:
        return f"SELECT *, 1 AS line_count FROM ({parse})"
    # The parser reads the first line of each event; the continuation joins its message.
    return f"""
        SELECT p.* REPLACE (
                   CASE WHEN g.continuation IS NULL OR p.reason IS NOT NULL THEN p.message
                        ELSE concat_ws(chr(10), p.message, g.continuation) END AS message,
                   CASE WHEN p.reason IS NOT NULL AND g.continuation IS NOT NULL
                        AND p.reason <> 'multiline_overflow'
                        THEN concat_ws(chr(10), p.raw_line, g.continuation)
                        ELSE p.raw_line END AS raw_line),
               g.line_count
        FROM ({parse}) p JOIN grouped g USING (byte_offset)"""


@contextmanager
def _batch_input(
    conn: duckdb.DuckDBPyConnection, batch: LineBatch, multiline: MultilineSpec | None
) -> Iterator[str]:
    """Register the batch for the parser; yields the relation `batch` is a view of.

    Multiline lines are first grouped into events (`_group_sql`) in the table `grouped`.
    """
    conn.register("batch_lines", batch.table)
    try:
        if multiline is None:
            yield "batch_lines"
        else:
            conn.execute(f"CREATE OR REPLACE TEMP TABLE grouped AS {_group_sql(multiline)}")
            yield "grouped"
    finally:
        conn.unregister("batch_lines")


def _commit_batch(
    conn: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    state: FileState,
    identity: Resolution,
    batch: LineBatch,
    parse: str,
    ingested_at: datetime,
) -> tuple[int, int, set]:
    """Events, then quarantined lines, then the new offset of one batch, in one transaction.

    The batch is parsed once for its events, inserted straight from the parse (materializing
    the parse first costs as much again). The lines that did not become events are found by
    their offsets among the rows just inserted, and only those are parsed again for their
    reasons: usually none or a few.
    """
    path = str(state.path)
    # Only rows of this batch match: nothing of this file was committed past its offset.
    inserted = (
        f"SELECT byte_offset, event_time FROM raw.events "
        f"WHERE ingested_at = {sql_literal(str(ingested_at))}::TIMESTAMP "
        f"AND file_id = {sql_literal(identity.file_id)} "
        f"AND byte_offset >= {batch.start_offset} AND byte_offset < {batch.end_offset}"
    )
    parsed = _parsed_sql(parse, source.multiline)
    with _batch_input(conn, batch, source.multiline) as lines:
        conn.execute("BEGIN TRANSACTION")
        try:
            if committed_offset(conn, identity.file_id) not in (None, batch.start_offset):
                raise OffsetConflictError(f"offset of {path} moved during ingestion")
            conn.execute(f"CREATE OR REPLACE TEMP VIEW batch AS SELECT * FROM {lines}")
            typed = "".join(f', "{column}"' for column in field_columns(source))
            events = conn.execute(
                f"""INSERT INTO raw.events BY NAME
                    SELECT event_time, ? AS source, ? AS tenant, service, host, level, message,
                           attrs, ? AS file_id, ? AS file_path, byte_offset, ? AS ingested_at,
                           line_count{typed}
                    FROM ({parsed}) WHERE reason IS NULL""",
                [source.name, source.tenant, identity.file_id, path, ingested_at],
            ).fetchall()[0][0]
            rows = conn.execute(f"SELECT count(*) FROM {lines}").fetchall()[0][0]
            quarantined = 0
            if events < rows:
                conn.execute(
                    f"CREATE OR REPLACE TEMP VIEW batch AS "
                    f"SELECT * FROM {lines} ANTI JOIN ({inserted}) USING (byte_offset)"
                )
                quarantined = conn.execute(
                    f"""INSERT INTO raw.quarantine
                        SELECT ?, ?, ?, byte_offset, reason, raw_line, raw_bytes, ?, line_count
                        FROM ({parsed})
                        WHERE reason IS NOT NULL""",
                    [source.name, identity.file_id, path, ingested_at],
                ).fetchall()[0][0]
            if events + quarantined != rows:
                raise RuntimeError(
                    f"{path}: {rows} lines from offset {batch.start_offset} gave {events} events "
                    f"and {quarantined} quarantined lines"
                )
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
                    f"SELECT DISTINCT date_trunc('hour', event_time) FROM ({inserted})"
                ).fetchall()
            }
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return events, quarantined, hours


def is_idle(
    state: FileState, settings: IngestConfig, now: datetime, seconds: int | None = None
) -> bool:
    """Whether a file stopped growing long enough (default: to read an unterminated last line)."""
    limit = settings.flush_partial_after_seconds if seconds is None else seconds
    if limit is None:
        return False
    modified = datetime.fromtimestamp(state.mtime_ns / 1e9, UTC).replace(tzinfo=None)
    return (now - modified).total_seconds() >= limit


def _event_batches(
    conn: duckdb.DuckDBPyConnection,
    handle: BinaryIO,
    reader,
    start: int,
    tail: bytes | None,
    spec: MultilineSpec,
    complete_at_end: bool,
) -> Iterator[LineBatch]:
    """Batches cut at event starts, so a multiline event is never split across two commits.

    The last event of a batch may continue in the next bytes: it is left for the next batch,
    or, at the end of the file, until the file has been idle for `spec.timeout_seconds`.
    """
    offset = start
    while (batch := next(iter(reader(offset, expected_tail=tail)), None)) is not None:
        handle.seek(batch.end_offset)
        at_end = handle.read(1) == b""
        conn.register("batch_lines", batch.table)
        try:
            starts = [
                row[0]
                for row in conn.execute(
                    "SELECT byte_offset FROM batch_lines WHERE byte_offset > ? AND "
                    "(pre_reason IS NOT NULL OR regexp_matches(line, ?))",
                    [batch.start_offset, spec.start],
                ).fetchall()
            ]
        finally:
            conn.unregister("batch_lines")
        if at_end and complete_at_end:
            cut = batch.end_offset
        elif starts:
            cut = max(starts)
        elif not at_end or batch.data is None:
            cut = batch.end_offset  # one event fills the whole chunk: it cannot wait longer
        else:
            return  # the file's last event may still grow
        if cut < batch.end_offset:
            batch = batch.cut(cut)
        yield batch
        offset = batch.end_offset
        tail = batch.tail if tail is not None else None


@dataclass
class _OpenFile:
    """A file opened, matched to what the warehouse committed of it, and its reading begun."""

    source: SourceConfig
    current: FileState
    identity: Resolution
    handle: BinaryIO
    batches: ReadAhead | Iterator[LineBatch]
    result: FileResult
    open_seconds: float

    def close(self) -> None:
        # Closing the batches stops a read ahead before the handle closes.
        try:
            self.batches.close()
        finally:
            self.handle.close()


def _open_file(
    conn: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    state: FileState,
    settings: IngestConfig,
    ingested_at: datetime,
    *,
    start_reading: bool = True,
) -> _OpenFile | FileResult:
    """Open a file to read after its committed offset (a result when there is nothing to read).

    Reading begins at once, or with `start_reading=False` when its `ReadAhead` is started.
    """
    started = time.perf_counter()
    # One handle for identity and reading: a rename or rotation between the sensor's look and
    # this read cannot make us read one file's bytes under another file's identity.
    try:
        handle = open_log(state.path)
    except READ_ERRORS:
        return FileResult(source.name, state.file_id, str(state.path), 0, 0, status="vanished")
    try:
        try:
            current = state_of(handle, state.path, source.name)
        except READ_ERRORS:
            current = None
        if current is None:
            handle.close()
            return FileResult(
                source.name, state.file_id, str(state.path), 0, 0, status="unreadable"
            )
        identity = resolve_file(conn, current, handle)
        start = identity.start
        result = FileResult(
            source.name, identity.file_id, str(state.path), start, start, status=identity.status
        )
        if current.size is not None and current.size <= start:
            handle.close()
            return result
        flush = current.compressed or is_idle(current, settings, ingested_at)
        reader = partial(
            read_batches,
            handle,
            chunk_bytes=settings.chunk_bytes,
            max_line_bytes=settings.max_line_bytes,
            flush_tail=flush,
            align_rows=ROW_GROUP_ROWS,
        )
        # Compressed files never change; plain ones are checked before every chunk.
        tail = None if current.compressed else identity.tail
        if source.multiline is None:
            batches = ReadAhead(reader(start, expected_tail=tail), started=start_reading)
        else:
            done = current.compressed or is_idle(
                current, settings, ingested_at, source.multiline.timeout_seconds
            )
            batches = _event_batches(conn, handle, reader, start, tail, source.multiline, done)
    except BaseException:
        handle.close()
        raise
    return _OpenFile(
        source, current, identity, handle, batches, result, time.perf_counter() - started
    )


def _ingest_open(
    conn: duckdb.DuckDBPyConnection,
    opened: _OpenFile,
    ingested_at: datetime,
    after_commit: Callable[[FileResult], None] | None,
) -> FileResult:
    """Commit the batches of an opened file, one transaction each; closes the file."""
    started = time.perf_counter() - opened.open_seconds
    source, current, result = opened.source, opened.current, opened.result
    parse = parse_sql(source)
    try:
        for batch in opened.batches:
            events, quarantined, hours = _commit_batch(
                conn, source, current, opened.identity, batch, parse, ingested_at
            )
            result.end_offset = batch.end_offset
            result.lines += batch.lines
            result.events += events
            result.quarantined += quarantined
            result.chunks += 1
            result.hours |= hours
            result.seconds = time.perf_counter() - started
            if after_commit is not None:
                after_commit(result)
    except READ_ERRORS:
        if not current.compressed:
            raise
        result.status = "incomplete"  # a compressed file still being written: next run
    finally:
        opened.close()
        conn.execute("DROP VIEW IF EXISTS batch")
        conn.execute("DROP TABLE IF EXISTS grouped")
    return result


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
    opened = _open_file(conn, source, state, settings, ingested_at)
    if isinstance(opened, FileResult):
        return opened
    return _ingest_open(conn, opened, ingested_at, after_commit)


def _read_after(opened: _OpenFile, following: _OpenFile) -> None:
    """Start reading `following` once `opened` has read its last chunk: two chunks in memory."""
    if not isinstance(following.batches, ReadAhead):
        return  # a multiline file reads as it is committed
    if isinstance(opened.batches, ReadAhead):
        opened.batches.then(following.batches)
    else:
        following.batches.start()


def ingest_files(
    conn: duckdb.DuckDBPyConnection,
    work: Iterable[tuple[SourceConfig, FileState]],
    settings: IngestConfig,
    *,
    ingested_at: datetime,
    after_commit: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Ingest many files one after another; the report sums what each contributed.

    While a file's last chunk is committed, the next file is already opened and its first
    chunk read. Its match to the warehouse (`resolve_file`) cannot change meanwhile, as commits
    only move the offsets of the file being committed, unless both files start with the same
    content (a rotated copy): then the next one is opened again afterwards.
    """
    started = time.perf_counter()
    # Row order in raw.events carries no meaning (byte_offset does): without it DuckDB inserts
    # with both threads and fills whole row groups.
    work = list(work)
    for source in {source.name: source for source, _ in work}.values():
        ensure_field_columns(conn, field_column_specs(source))
    conn.execute("SET preserve_insertion_order = false")
    results: list[FileResult] = []
    ahead: _OpenFile | None = None
    try:
        for index, (source, state) in enumerate(work):
            opened = ahead or _open_file(conn, source, state, settings, ingested_at)
            ahead = None
            if isinstance(opened, FileResult):
                results.append(opened)
                continue
            if index + 1 < len(work):
                following = _open_file(
                    conn, *work[index + 1], settings, ingested_at, start_reading=False
                )
                if isinstance(following, _OpenFile):
                    if following.current.fingerprint != opened.current.fingerprint:
                        ahead = following
                        _read_after(opened, following)
                    else:
                        following.close()
            results.append(_ingest_open(conn, opened, ingested_at, after_commit))
    finally:
        if ahead is not None:
            ahead.close()
        conn.execute("RESET preserve_insertion_order")
    return IngestReport(results, time.perf_counter() - started)
