"""Reading new bytes of a file as bounded batches of complete lines, split without a Python loop.

Each batch covers whole lines from a start offset to just past its last newline; a partial last
line is left for a later read. Lines become an Arrow table (`byte_offset`, `line` as a string
view without its line terminator) that DuckDB parses in SQL. Lines that cannot be handed to
DuckDB as text (invalid UTF-8, too long) are NULL there and carry a `pre_reason` and their raw
content, so they are quarantined instead of failing the statement.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from loglens_pipeline.ingest.identity import TAIL_BYTES, open_log

RAW_KEEP_BYTES = 1024
ROW_GROUP_ROWS = 122_880  # DuckDB's row group: whole ones are written once, ragged ones rewritten
UTF8_BOM = b"\xef\xbb\xbf"
# DuckDB scans one record batch per thread, and each thread's inserted rows form their own row
# groups: batches of whole row groups (a 64 MiB chunk is two) leave no small partial row group,
# which the checkpoint would merge by rewriting the full ones around it.
ARROW_BATCH_ROWS = ROW_GROUP_ROWS
_INLINE = 12  # Arrow string views store strings of up to 12 bytes inline


@dataclass(frozen=True)
class LineBatch:
    """Complete lines read from `start_offset` up to `end_offset` (exclusive).

    `tail` holds the last bytes before `end_offset` (at most `TAIL_BYTES`): the checkpoint that
    lets a later run recognise the same content under another name.
    """

    start_offset: int
    end_offset: int
    table: pa.Table
    tail: bytes
    data: bytes | None = None  # the chunk's bytes (None for a skipped overlong line)

    def cut(self, offset: int) -> LineBatch:
        """The lines before `offset` (a line start inside this batch), as a batch of their own."""
        # Rows are in file order, so the lines before `offset` are a prefix (a zero-copy slice).
        count = int(np.searchsorted(self.table["byte_offset"].to_numpy(), offset))
        kept = self.table.slice(0, count)
        assert self.data is not None
        data = self.data[: offset - self.start_offset]
        return LineBatch(self.start_offset, offset, kept, data[-TAIL_BYTES:], data)

    @property
    def lines(self) -> int:
        return self.table.num_rows


def _as_text(raw: bytes) -> str:
    """Printable text of a bad line for `raw_line`: invalid UTF-8 and NUL become U+FFFD."""
    return raw.decode("utf-8", errors="replace").replace("\0", "\ufffd")


def _string_views(
    data: bytes, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, valid: np.ndarray
) -> pa.Array:
    """Zero-copy Arrow string views over `data`; views of invalid lines are empty and NULL."""
    n = len(starts)
    lengths = np.where(valid, lengths, 0).astype(np.int32)
    views = np.zeros((n, 4), dtype=np.int32)
    views[:, 0] = lengths
    view_bytes = views.view(np.uint8).reshape(n, 16)
    long_lines = lengths > _INLINE
    if long_lines.any():
        # Long strings point into the one data buffer (index 0, column 2) at their offset.
        views[long_lines, 3] = starts[long_lines]
        first = starts[long_lines, None] + np.arange(4)
        view_bytes[long_lines, 4:8] = buf[first]
    short = np.flatnonzero(~long_lines & (lengths > 0))
    if len(short):
        idx = np.minimum(starts[short, None] + np.arange(_INLINE), len(buf) - 1)
        inline = np.where(np.arange(_INLINE) < lengths[short, None], buf[idx], 0)
        view_bytes[short, 4:16] = inline.astype(np.uint8)  # replaces prefix and offset
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string_view(), n, [validity, pa.py_buffer(views), pa.py_buffer(data)]
    )


def split_lines(data: bytes, start_offset: int, max_line_bytes: int) -> pa.Table:
    """Split bytes that end with a newline into a table of lines, one row per line."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    n = len(newlines)
    starts = np.empty(n, dtype=np.int64)
    starts[0:1] = 0
    starts[1:] = newlines[:-1] + 1
    ends = newlines.copy()
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    ends -= has_cr
    offsets = starts + start_offset  # where each line begins in the file
    if start_offset == 0 and data.startswith(UTF8_BOM) and n:
        starts[0] = min(len(UTF8_BOM), ends[0])  # the first line's text begins after the BOM
    lengths = ends - starts

    reasons: dict[int, str] = {}
    for i in np.flatnonzero(lengths > max_line_bytes):
        reasons[int(i)] = "line_too_long"
    if n and buf.max() >= 0x80:
        # Only lines holding non-ASCII bytes can be invalid UTF-8; decode just those.
        candidates = np.unique(np.searchsorted(starts, np.flatnonzero(buf >= 0x80), "right") - 1)
        for i in candidates:
            if int(i) in reasons:
                continue
            try:
                data[starts[i] : ends[i]].decode("utf-8")
            except UnicodeDecodeError:
                reasons[int(i)] = "invalid_utf8"
    if n and np.any(buf == 0):
        for i in np.unique(np.searchsorted(starts, np.flatnonzero(buf == 0), "right") - 1):
            reasons.setdefault(int(i), "nul_byte")

    valid = np.ones(n, dtype=bool)
    pre_reason = raw_line = raw_bytes = None
    if reasons:
        bad = np.fromiter(reasons, dtype=np.int64)
        valid[bad] = False
        pre, texts, blobs = [None] * n, [None] * n, [None] * n
        for i, reason in reasons.items():
            raw = data[starts[i] : min(ends[i], starts[i] + max_line_bytes)]
            kept = raw[:RAW_KEEP_BYTES] if reason == "line_too_long" else raw
            pre[i] = reason
            texts[i] = _as_text(kept)
            blobs[i] = kept if reason != "line_too_long" else None
        pre_reason, raw_line, raw_bytes = (
            pa.array(pre, pa.string()),
            pa.array(texts, pa.string()),
            pa.array(blobs, pa.binary()),
        )
    table = pa.table(
        {
            "byte_offset": pa.array(offsets),
            "line": _string_views(data, buf, starts.astype(np.int32), lengths, valid),
            "pre_reason": pre_reason if pre_reason is not None else pa.nulls(n, pa.string()),
            "raw_line": raw_line if raw_line is not None else pa.nulls(n, pa.string()),
            "raw_bytes": raw_bytes if raw_bytes is not None else pa.nulls(n, pa.binary()),
        }
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_BATCH_ROWS))


def _skip_long_line(handle, start: int, first: bytes, end_limit: int | None) -> LineBatch | None:
    """A line longer than a whole chunk: find its end, keep its first KiB as a quarantined row."""
    position = start + len(first)
    previous = first[-TAIL_BYTES:]
    while True:
        block = handle.read(1 << 20)
        if not block:
            return None  # no newline yet: wait for the line to end
        newline = block.find(b"\n")
        if newline >= 0:
            end = position + newline + 1
            tail = (previous + block[: newline + 1])[-TAIL_BYTES:]
            break
        position += len(block)
        previous = (previous + block)[-TAIL_BYTES:]
    if end_limit is not None and end > end_limit:
        return None  # the line ends beyond what this read may consume
    kept = first[:RAW_KEEP_BYTES]
    table = pa.table(
        {
            "byte_offset": pa.array([start], pa.int64()),
            "line": pa.nulls(1, pa.string_view()),
            "pre_reason": pa.array(["line_too_long"]),
            "raw_line": pa.array([_as_text(kept)]),
            "raw_bytes": pa.nulls(1, pa.binary()),
        }
    )
    return LineBatch(start, end, table, tail)


def _aligned(data: bytes, rows: int) -> tuple[bytes, bytes]:
    """Split whole lines into a prefix of a multiple of `rows` lines and the rest."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    if len(newlines) <= rows:
        return data, b""
    cut = int(newlines[len(newlines) - len(newlines) % rows - 1]) + 1
    return data[:cut], data[cut:]


def read_batches(
    source: Path | BinaryIO,
    start: int,
    *,
    chunk_bytes: int,
    max_line_bytes: int,
    end_limit: int | None = None,
    flush_tail: bool = False,
    expected_tail: bytes | None = None,
    align_rows: int | None = None,
) -> Iterator[LineBatch]:
    """Yield batches of complete lines from `start`, each at most `chunk_bytes` long.

    `source` is a path or an open handle (from `identity.open_log`: decompressed for `.gz`).
    Reads stop at `end_limit` when given (bytes written after it wait for a later run) and
    never include a line whose newline has not been written yet, unless `flush_tail`: then a
    final unterminated line is read as a line (a compressed file, or one idle long enough).
    With `expected_tail` (the bytes just before `start`), reading stops as soon as those bytes
    are no longer in place: the file was truncated or replaced while it was being read.
    With `align_rows`, a batch that is not the file's last holds a multiple of that many lines
    (the lines after the cut are kept in memory for the next batch, not read again).
    """
    if isinstance(source, Path):
        with open_log(source) as handle:
            yield from read_batches(
                handle,
                start,
                chunk_bytes=chunk_bytes,
                max_line_bytes=max_line_bytes,
                end_limit=end_limit,
                flush_tail=flush_tail,
                expected_tail=expected_tail,
                align_rows=align_rows,
            )
        return
    handle = source
    offset = start
    tail = expected_tail
    carry = b""  # complete lines read past the last batch's aligned end
    while end_limit is None or offset < end_limit:
        if tail:
            handle.seek(offset - len(tail))
            if handle.read(len(tail)) != tail:
                return
        handle.seek(offset + len(carry))
        want = chunk_bytes - len(carry)
        if end_limit is not None:
            want = min(want, end_limit - offset - len(carry))
        fresh = handle.read(want) if want > 0 else b""
        data, carry = carry + fresh, b""
        if not data:
            return
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            if len(data) < chunk_bytes:
                if flush_tail and len(data) < want:  # at the end of the file
                    table = split_lines(data + b"\n", offset, max_line_bytes)
                    yield LineBatch(offset, offset + len(data), table, data[-TAIL_BYTES:], data)
                return  # otherwise a partial last line waits for its newline
            skipped = _skip_long_line(handle, offset, data, end_limit)
            if skipped is None:
                return
            yield skipped
            offset = skipped.end_offset
            tail = skipped.tail if expected_tail is not None else None
            continue
        data = data[: last_newline + 1]
        if align_rows and len(fresh) == want:  # not the file's last batch
            data, carry = _aligned(data, align_rows)
        table = split_lines(data, offset, max_line_bytes)
        batch = LineBatch(offset, offset + len(data), table, data[-TAIL_BYTES:], data)
        yield batch
        offset += len(data)
        tail = batch.tail if expected_tail is not None else None


class ReadAhead:
    """Iterate `batches`, reading and splitting the next one in a thread meanwhile.

    Reading and numpy release the GIL, so the next chunk is ready when DuckDB has parsed and
    committed this one. At most one batch is read ahead: memory stays two chunks. Reading starts
    when this is created, or, with `started=False`, on `start` or when another `ReadAhead`
    given this one in `then` has read its last batch (a file read while the one before it
    commits its last chunk). `close` waits for a read in flight: the handle can close after it.
    """

    def __init__(self, batches: Iterator[LineBatch], *, started: bool = True) -> None:
        self._batches = batches
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="loglens-read")
        self._lock = threading.Lock()
        self._future: Future[LineBatch | None] | None = None
        self._following: ReadAhead | None = None
        self._ended = self._closed = False
        if started:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._future is None and not (self._ended or self._closed):
                self._future = self._pool.submit(self._read)

    def then(self, following: ReadAhead) -> None:
        """Start `following` once this one has read its last batch."""
        with self._lock:
            self._following = following
            ended = self._ended
        if ended:
            following.start()

    def _read(self) -> LineBatch | None:
        batch = next(self._batches, None)
        if batch is None:
            with self._lock:
                self._ended = True
                following = self._following
            if following is not None:
                following.start()
        return batch

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> LineBatch:
        self.start()
        if self._future is None:
            raise StopIteration
        batch = self._future.result()
        with self._lock:
            self._future = None
        if batch is None:
            raise StopIteration
        self.start()
        return batch

    def close(self) -> None:
        with self._lock:
            self._closed = True
            future = self._future
        if future is not None:
            future.exception()  # waits; a read error was already raised, or is moot
        self._pool.shutdown(wait=True)
