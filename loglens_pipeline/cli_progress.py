"""What the CLI shows of long work: live bars while it runs, a summary table when it is done.

The bars follow `progress` events: bytes, files and lines of an ingestion as its chunks
commit, and the assets of a run of many (`metrics_job`) as they are stored. They are drawn on
stderr, so the summary tables on stdout stay clean when piped; on a console that is not a
terminal rich draws nothing live and prints the bars' final state once.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from loglens_pipeline import progress
from loglens_pipeline.ingest.ingestor import FileResult, IngestReport


@dataclass
class SourceTotals:
    """What one source contributed to an ingestion; `seconds` spent reading its files."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    events: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


class IngestTally:
    """One ingestion's totals so far, folded from its `progress` events."""

    def __init__(self, plan: progress.IngestPlanned) -> None:
        self.plan = plan
        self.bytes_total = plan.bytes
        self.bytes = 0
        self.lines = 0
        self.files_done = 0
        self.report: IngestReport | None = None
        self._index = {f.path: i for i, f in enumerate(plan.files)}
        self._files: dict[str, FileResult] = {}
        self._seen: dict[str, tuple[int, int]] = {}

    def committed(self, result: FileResult) -> None:
        """A chunk of `result.path` committed; `result` holds that file's totals so far."""
        done_bytes, done_lines = self._seen.get(result.path, (0, 0))
        self._seen[result.path] = (result.bytes, result.lines)
        self._files[result.path] = result
        self.bytes += result.bytes - done_bytes
        self.lines += result.lines - done_lines
        self.bytes_total = max(self.bytes_total, self.bytes)  # compressed files grow it
        # Files are read one after another in the planned order: earlier ones are done.
        index = self._index.get(result.path)
        if index is not None:
            pending = self.plan.files[index].bytes
            complete = pending is not None and result.bytes >= pending
            self.files_done = max(self.files_done, index + complete)

    def finished(self, report: IngestReport) -> None:
        """Every file is done: what is left past the read bytes waits for its newline."""
        self.report = report
        for result in report.files:
            self._files[result.path] = result
        self.bytes = report.total("bytes")
        self.lines = report.total("lines")
        self.bytes_total = self.bytes
        self.files_done = len(self.plan.files)

    @property
    def lines_per_second(self) -> float:
        if self.report is not None:
            return self.report.lines_per_second
        seconds = sum(result.seconds for result in self._files.values())
        return self.lines / seconds if seconds > 0 else 0.0

    def by_source(self) -> dict[str, SourceTotals]:
        """Totals per source, every planned source included; files count those with new lines."""
        totals = {f.source: SourceTotals() for f in self.plan.files}
        for result in self._files.values():
            row = totals.setdefault(result.source, SourceTotals())
            row.seconds += result.seconds
            row.files += bool(result.lines)
            row.bytes += result.bytes
            row.lines += result.lines
            row.events += result.events
            row.quarantined += result.quarantined
        return totals


def _ingest_fields(tally: IngestTally) -> dict:
    return {
        "files": f"{tally.files_done}/{len(tally.plan.files)} files",
        "lines": f"{tally.lines:,} lines",
        "rate": f"{tally.lines_per_second:,.0f} lines/s",
    }


def _stderr_file():
    """A second descriptor for stderr, or None when stderr is not a real file (tests).

    While an in-process run executes, Dagster points descriptors 1 and 2 at the run's compute
    log and mirrors it back with `tail`: bars drawn there would lag and fill the run's logs.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return os.fdopen(os.dup(fd), "w", encoding=sys.stderr.encoding or "utf-8", errors="replace")


class LiveProgress:
    """Bars on stderr for what this process runs while inside the `with` block.

    Also the demo's phase line: `phase(message)` shows a spinner with the running phase and
    prints how long the previous one took; `phase(None)` ends the last one.
    """

    def __init__(self) -> None:
        self._file = _stderr_file()
        console = Console(file=self._file) if self._file else Console(stderr=True)
        self.console = console
        self.ingestions: list[IngestTally] = []
        self._phases = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        )
        self._ingest_bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[lines]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._asset_bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("assets"),
            TimeElapsedColumn(),
            console=console,
        )
        # Python's stdout and stderr are left alone: what steps print stays in the run's logs.
        self._live = Live(
            Group(self._phases, self._ingest_bars, self._asset_bars),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._ingest_task: TaskID | None = None
        self._run_tasks: dict[str, TaskID] = {}
        self._phase: tuple[TaskID, str, float] | None = None
        self._subscription = progress.subscribed(self)

    def __enter__(self) -> LiveProgress:
        self._subscription.__enter__()
        self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        self._subscription.__exit__(*exc)
        self._live.stop()
        if not self.console.is_interactive:
            self.console.line()  # rich leaves the bars' one final print unterminated
        if self._file is not None:
            self._file.close()

    def phase(self, message: str | None) -> None:
        now = time.perf_counter()
        if self._phase is not None:
            task, previous, started = self._phase
            self._phases.remove_task(task)
            self.console.print(f"[green]done[/] {previous} [dim]({now - started:.1f}s)[/]")
            self._phase = None
        if message is not None:
            self._phase = (self._phases.add_task(message), message, now)

    def __call__(self, event: object) -> None:
        if isinstance(event, progress.IngestPlanned):
            tally = IngestTally(event)
            self.ingestions.append(tally)
            self._ingest_task = self._ingest_bars.add_task(
                "ingest", total=tally.bytes_total, **_ingest_fields(tally)
            )
        elif self._ingest_task is not None and isinstance(event, FileResult | IngestReport):
            tally = self.ingestions[-1]
            if isinstance(event, FileResult):
                tally.committed(event)
            else:
                tally.finished(event)
            self._ingest_bars.update(
                self._ingest_task,
                completed=tally.bytes,
                total=tally.bytes_total,
                **_ingest_fields(tally),
            )
        elif isinstance(event, progress.AssetsPlanned) and event.assets > 1:
            # Runs of one asset have nothing to count; ingestion has its own bar.
            self._run_tasks[event.run_id] = self._asset_bars.add_task(event.job, total=event.assets)
        elif isinstance(event, progress.AssetStored) and event.run_id in self._run_tasks:
            self._asset_bars.advance(self._run_tasks[event.run_id])


def ingest_table(tally: IngestTally | None, run_id: str) -> Table:
    """Per source: files with new lines, bytes, lines, events, quarantined, lines/s; a total."""
    table = Table(title=f"Ingested (run {run_id[:8]})")
    table.add_column("source")
    for column in ("files", "bytes", "lines", "events", "quarantined", "lines/s"):
        table.add_column(column, justify="right")
    sources = tally.by_source() if tally else {}
    for name, row in sources.items():
        table.add_row(name, *_counts(row), f"{row.lines_per_second:,.0f}")
    total = SourceTotals(**{f: sum(getattr(row, f) for row in sources.values()) for f in _COUNTED})
    rate = tally.lines_per_second if tally else 0.0
    table.add_section()
    table.add_row("total", *_counts(total), f"{rate:,.0f}", style="bold")
    hours = tally.report.hours if tally and tally.report else []
    if hours:
        table.caption = (
            f"{len(hours)} event hour{'s' * (len(hours) > 1)}: "
            f"{hours[0]:%Y-%m-%d %H:00} .. {hours[-1]:%Y-%m-%d %H:00} UTC"
        )
    elif not total.lines:
        table.caption = "no new complete lines"
    return table


_COUNTED = ("files", "bytes", "lines", "events", "quarantined")


def _counts(row: SourceTotals) -> list[str]:
    return [f"{getattr(row, f):,}" for f in _COUNTED]


def backfill_table(result, first: datetime, last: datetime, seconds: float) -> Table:
    """Hours, assets materialized, rows written (by asset group) and seconds of a metrics run."""
    rows: dict[tuple[str, ...], int] = {}
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        count = meta.get("dagster/row_count") or meta.get("dagster/partition_row_count")
        # One run over many hours records the same metadata on each hour: count an asset once.
        rows[tuple(event.asset_key.path)] = int(count.value) if count else 0
    groups: dict[str, int] = {}
    for key, count in rows.items():
        groups[key[0]] = groups.get(key[0], 0) + count
    hours = int((last - first).total_seconds() // 3600) + 1
    table = Table(title=f"Backfill (run {result.run_id[:8]})", show_header=False)
    table.add_row("hours", f"{hours} ({first:%Y-%m-%d %H:00} .. {last:%Y-%m-%d %H:00} UTC)")
    table.add_row("assets", f"{len(rows)}")
    table.add_row(
        "rows written",
        f"{sum(rows.values()):,}  " + ", ".join(f"{k}: {v:,}" for k, v in groups.items()),
    )
    table.add_row("seconds", f"{seconds:.1f}")
    return table
