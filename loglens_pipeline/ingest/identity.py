"""File identity: which file is this, whatever its current name, and where did we stop in it?

A file is known by a fingerprint of its first line (at most `FINGERPRINT_BYTES`), hashed with
the source name, over its *decompressed* content. Appends never change it, a rename keeps it,
and a compressed copy of a rotated file (`app.log.1.gz`) has the same one, so it is not read
twice. A file whose first line is not complete yet has no identity and waits for its newline.

Two files can share a first line (identical headers, a copy, a log rewritten in place), so the
ingestor also checks a *tail checkpoint*: the hash of the last bytes before the committed
offset. A file continues a known one only if those bytes are still there (see
`ingestor.resolve_file`). Device and inode are hints to prefer the same physical file.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FINGERPRINT_BYTES = 1024
TAIL_BYTES = 64
COMPRESSED_SUFFIXES = {".gz": gzip.open, ".bz2": bz2.open}


@dataclass(frozen=True)
class FileState:
    """What the filesystem says about one log file right now.

    `size` is `None` for compressed files: they are always read to their end (once), and the
    tail checkpoint tells whether they continue a known file.
    """

    path: Path
    fingerprint: str
    size: int | None
    device: int
    inode: int
    mtime_ns: int
    compressed: bool
    disk_size: int

    @property
    def file_id(self) -> str:
        """The identity of a first generation; `ingestor.resolve_file` picks the actual one."""
        return self.fingerprint

    @property
    def cursor_key(self) -> str:
        return f"{self.fingerprint}:{self.device}:{self.inode}"

    @property
    def signature(self) -> int:
        return self.disk_size


def is_compressed(path: Path) -> bool:
    return path.suffix in COMPRESSED_SUFFIXES


def open_log(path: Path) -> BinaryIO:
    """The file's content as a binary stream, decompressed for `.gz` and `.bz2`."""
    opener = COMPRESSED_SUFFIXES.get(path.suffix)
    return opener(path, "rb") if opener else path.open("rb")


def fingerprint(head: bytes, source: str) -> str | None:
    """Identity of a file from its first bytes, or None while its first line is incomplete."""
    newline = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        first = head[: newline + 1]
    elif len(head) >= FINGERPRINT_BYTES:
        first = head[:FINGERPRINT_BYTES]
    else:
        return None
    return hashlib.blake2b(source.encode() + b"\0" + first, digest_size=16).hexdigest()


def tail_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_span(handle: BinaryIO, start: int, end: int) -> bytes:
    """Bytes `[start, end)` of the open (decompressed) content; shorter if the file is."""
    handle.seek(start)
    return handle.read(end - start)


# A compressed file still being written reads as truncated or corrupt: skip it until complete.
READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, ValueError)


def state_of(handle: BinaryIO, path: Path, source: str) -> FileState | None:
    """Identity of the file behind an open handle (the same file the caller goes on reading)."""
    st = os.fstat(handle.fileno())
    handle.seek(0)
    head = handle.read(FINGERPRINT_BYTES)
    file_fingerprint = fingerprint(head, source)
    if file_fingerprint is None:
        return None
    compressed = is_compressed(path)
    size = None if compressed else st.st_size
    return FileState(
        path, file_fingerprint, size, st.st_dev, st.st_ino, st.st_mtime_ns, compressed, st.st_size
    )


def stat_file(path: Path, source: str) -> FileState | None:
    """Stat and fingerprint a file; None if it vanished, is unreadable or has no first line yet."""
    try:
        with open_log(path) as handle:
            return state_of(handle, path, source)
    except READ_ERRORS:
        return None
