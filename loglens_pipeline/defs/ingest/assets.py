"""The ingestion asset: new bytes of watched files -> `raw.events` and `raw.quarantine`."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from loglens_pipeline import progress
from loglens_pipeline.config.models import SourceConfig
from loglens_pipeline.defs.partitions import closed_hours, late_hours, partition_key
from loglens_pipeline.defs.project import OWNER, WAREHOUSE_POOL, Project, code_version
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.ingest.discovery import all_source_files
from loglens_pipeline.ingest.identity import FileState, stat_file
from loglens_pipeline.ingest.ingestor import FileResult, IngestReport, ingest_files
from loglens_pipeline.ingest.parsers import parse_sql

RAW_EVENTS = dg.AssetKey(["raw", "events"])
EVENT_HOURS = dg.AssetKey(["raw", "event_hours"])


class FileRequest(dg.Config):
    """One file to ingest, as the sensor saw it."""

    source: str
    path: str


class IngestRunConfig(dg.Config):
    """Files to ingest; empty means every file of every source (a catch-up run)."""

    files: list[FileRequest] = []


def source_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["sources", name])


def source_specs(project: Project) -> list[dg.AssetSpec]:
    """One external asset per configured source: the log files themselves, for lineage."""
    return [
        dg.AssetSpec(
            source_key(source.name),
            description=f"Log files matching `{source.glob}` under `{project.logs_dir}` "
            f"(format `{source.format}`).",
            group_name="sources",
            kinds={"file"},
            owners=[OWNER],
            tags={"area": "ingest", "format": source.format},
            code_version=code_version(source.model_dump_json()),
            metadata={"glob": source.glob, "format": source.format, "timezone": source.timezone},
        )
        for source in project.config.sources
    ]


def ingest_version(project: Project) -> str:
    """What ingestion makes of a line: every source's parsing statement (typed fields included)."""
    return code_version(*(parse_sql(source) for source in project.config.sources))


def event_hours_spec(project: Project, partitions: dg.PartitionsDefinition) -> dg.AssetSpec:
    """`raw.events` seen hour by hour: ingestion records each closed hour it wrote into."""
    return dg.AssetSpec(
        EVENT_HOURS,
        deps=[RAW_EVENTS],
        partitions_def=partitions,
        group_name="ingest",
        kinds={"duckdb"},
        owners=[OWNER],
        tags={"area": "ingest"},
        code_version=ingest_version(project),
        description=(
            "`raw.events` by event hour. Not computed by itself: every ingestion run records a "
            "materialization of each closed hour it wrote events into, which re-triggers the "
            "metrics of hours that received late data."
        ),
    )


def ingest_report_metadata(report: IngestReport) -> dict[str, dg.MetadataValue]:
    """Run metadata: totals, the event-hour range, throughput and a per-source table."""
    hours = report.hours
    per_source: dict[str, list[float]] = {}
    for f in report.files:
        row = per_source.setdefault(f.source, [0, 0, 0, 0, 0.0])
        for i, value in enumerate((f.bytes, f.lines, f.events, f.quarantined, f.seconds)):
            row[i] += value
    table = (
        "| source | bytes | lines | events | quarantined | lines/s |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        + "".join(
            f"| {name} | {b:,} | {li:,} | {e:,} | {q:,} | {li / s if s else 0:,.0f} |\n"
            for name, (b, li, e, q, s) in per_source.items()
        )
    )
    return {
        "files": dg.MetadataValue.int(sum(1 for f in report.files if f.lines)),
        "bytes": dg.MetadataValue.int(report.total("bytes")),
        "lines": dg.MetadataValue.int(report.total("lines")),
        "events": dg.MetadataValue.int(report.total("events")),
        "quarantined": dg.MetadataValue.int(report.total("quarantined")),
        "first_event_hour": dg.MetadataValue.text(hours[0].isoformat() if hours else "-"),
        "last_event_hour": dg.MetadataValue.text(hours[-1].isoformat() if hours else "-"),
        "event_hours": dg.MetadataValue.int(len(hours)),
        "lines_per_second": dg.MetadataValue.float(round(report.lines_per_second, 1)),
        "per_source": dg.MetadataValue.md(table),
        "quarantine": dg.MetadataValue.md(
            "Quarantined lines by source and reason, with an example each: the view "
            "`analytics.quarantine_by_reason` (reader copy, for BI tools) or `loglens quarantine`; "
            "every line with its reason and raw bytes is in `raw.quarantine`:\n\n"
            "```sql\nSELECT * FROM analytics.quarantine_by_reason\n```"
        ),
    }


def pending_files(
    conn: duckdb.DuckDBPyConnection, work: list[tuple[SourceConfig, FileState]]
) -> progress.IngestPlanned:
    """What each file holds past its committed offset, for progress bars.

    An estimate of where the ingestor will start: the newest generation of the file's
    fingerprint that the file is not shorter than, else 0 (a new or rewritten file).
    """
    committed: dict[str, list[tuple[int, int]]] = {}
    for fingerprint, generation, offset in conn.execute(
        "SELECT fingerprint, generation, committed_offset FROM raw.file_offsets "
        "WHERE list_contains(?, fingerprint)",
        [[state.fingerprint for _, state in work]],
    ).fetchall():
        committed.setdefault(fingerprint, []).append((generation, offset))
    files = []
    for source, state in work:
        pending = None
        if state.size is not None:
            offsets = [
                o for _, o in sorted(committed.get(state.fingerprint, [])) if o <= state.size
            ]
            pending = state.size - (offsets[-1] if offsets else 0)
        files.append(progress.PendingFile(source.name, str(state.path), pending))
    return progress.IngestPlanned(tuple(files))


def build_ingest_asset(project: Project) -> dg.AssetsDefinition:
    """The `raw/events` asset for a project; it also records `raw/event_hours` partitions."""
    sources = {s.name: s for s in project.config.sources}

    @dg.asset(
        key=RAW_EVENTS,
        deps=[source_key(name) for name in sources],
        group_name="ingest",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        owners=[OWNER],
        tags={"area": "ingest"},
        code_version=ingest_version(project),
        description=(
            "Log lines parsed into `raw.events`, exactly once. Reads only bytes after each file's "
            "committed offset (`raw.file_offsets`), in bounded chunks; each chunk's events, "
            "quarantined lines (`raw.quarantine`) and new offset commit in one transaction."
        ),
    )
    def raw_events(
        context: dg.AssetExecutionContext, config: IngestRunConfig, warehouse: DuckDBResource
    ):
        if config.files:
            requested = [
                (sources[f.source], Path(f.path)) for f in config.files if f.source in sources
            ]
        else:
            requested = list(all_source_files(project.logs_dir, project.config.sources))
        work = []
        for source, path in requested:
            state = stat_file(path, source.name)
            if state is None:
                context.log.warning(f"{path} vanished or has no complete first line; skipped")
                continue
            work.append((source, state))

        def after_commit(result: FileResult) -> None:
            context.log.debug(f"{result.path}: committed up to byte {result.end_offset:,}")
            progress.publish(result)

        with warehouse_session(project, warehouse) as conn:
            if progress.listening():  # the estimate costs a query: only for a display
                progress.publish(pending_files(conn, work))
            report = ingest_files(
                conn,
                work,
                project.config.ingest,
                ingested_at=datetime.now(UTC).replace(tzinfo=None),
                after_commit=after_commit,
            )
        progress.publish(report)
        context.log.info(
            f"ingested {report.total('lines'):,} lines from {len(work)} files: "
            f"{report.total('events'):,} events, {report.total('quarantined'):,} quarantined, "
            f"{report.lines_per_second:,.0f} lines/s"
        )
        # After the commit: each closed hour that got events is a new version of that
        # `raw/event_hours` partition, which is what re-triggers its metrics.
        partitions = project.config.partitions
        hours = closed_hours(report.hours, partitions)
        late = late_hours(hours, partitions)
        for hour in hours:
            yield dg.AssetMaterialization(
                asset_key=EVENT_HOURS,
                partition=partition_key(hour),
                metadata={"ingestion_run": dg.MetadataValue.text(context.run_id)},
            )
        metadata = ingest_report_metadata(report)
        metadata["late_hours"] = dg.MetadataValue.text(
            ", ".join(partition_key(h) for h in late) or "-"
        )
        if late:
            context.log.warning(
                f"{len(late)} hours received events after the allowed lateness of "
                f"{partitions.allowed_lateness_minutes} min; their metrics show as stale until "
                f"backfilled: {', '.join(partition_key(h) for h in late[:10])}"
            )
        yield dg.MaterializeResult(metadata=metadata)

    return raw_events
