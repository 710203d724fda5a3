"""Progress of long work in this process, for whoever in the same process wants to show it.

Jobs launched in-process (the CLI, the demo) run their steps in the caller's thread, so a
publisher deep inside an asset can reach a progress bar without Dagster in between. Publishers
call `publish`; with nobody subscribed that is one function call that returns at once.
Subscribers are called synchronously in the publisher's thread and must be quick.

What is published:
- `IngestPlanned`, then the ingestor's `FileResult` after every committed chunk (that file's
  totals so far in this ingestion), then its `IngestReport` when all files are done;
- `AssetsPlanned`, then one `AssetStored` per asset written, for runs that `runs.py` launches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Subscriber = Callable[[object], None]

_subscribers: list[Subscriber] = []


@contextmanager
def subscribed(subscriber: Subscriber) -> Iterator[None]:
    """Call `subscriber` with every event published in this process while the block runs."""
    _subscribers.append(subscriber)
    try:
        yield
    finally:
        _subscribers.remove(subscriber)


def listening() -> bool:
    """Whether anyone subscribed: lets a publisher skip work done only for the display."""
    return bool(_subscribers)


def publish(event: object) -> None:
    """Hand `event` to every subscriber, in the order they subscribed."""
    for subscriber in _subscribers:
        subscriber(event)


@dataclass(frozen=True)
class PendingFile:
    """A file an ingestion is about to read, and how many bytes it has not committed yet.

    `bytes` is None for compressed files: their decompressed size is known only once read.
    """

    source: str
    path: str
    bytes: int | None


@dataclass(frozen=True)
class IngestPlanned:
    """The files of an ingestion, in the order they are read."""

    files: tuple[PendingFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.bytes or 0 for f in self.files)


@dataclass(frozen=True)
class AssetsPlanned:
    """A run is starting: its job and how many assets it materializes."""

    run_id: str
    job: str
    assets: int


@dataclass(frozen=True)
class AssetStored:
    """The IO manager stored one asset of a run (all the run's partitions of it)."""

    run_id: str
    output: str
