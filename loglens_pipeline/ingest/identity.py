"""File identity: which file is this, whatever its current name?

A file is known by a fingerprint of its first line (at most `FINGERPRINT_BYTES`), hashed with
the source name. Appends never change it, a rename keeps it, and a file rewritten with new
content gets a new one. Device and inode are kept as hints for operators, not for identity,
because inodes are reused. A file whose first line is not complete yet has no identity and
waits for its newline.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

FINGERPRINT_BYTES = 1024


@dataclass(frozen=True)
class FileState:
    """What the filesystem says about one log file right now."""

    path: Path
    file_id: str
    size: int
    device: int
    inode: int
    mtime_ns: int


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


def stat_file(path: Path, source: str) -> FileState | None:
    """Stat and fingerprint a file; None if it vanished or has no complete first line yet."""
    try:
        with path.open("rb") as handle:
            st = os.fstat(handle.fileno())
            head = handle.read(FINGERPRINT_BYTES)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    file_id = fingerprint(head, source)
    if file_id is None:
        return None
    return FileState(path, file_id, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns)
