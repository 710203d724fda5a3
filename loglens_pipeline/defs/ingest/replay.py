"""`replay_quarantine_job`: re-parse quarantined lines after a parser config was fixed."""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from loglens_pipeline.defs.project import WAREHOUSE_POOL, Project
from loglens_pipeline.defs.resources import warehouse_session
from loglens_pipeline.ingest.replay import replay_quarantine


class ReplayConfig(dg.Config):
    """Sources whose quarantine to replay; empty means all."""

    sources: list[str] = []


def build_replay_job(project: Project) -> dg.JobDefinition:
    """A job of one op in the warehouse pool, so it never races an ingestion run."""

    @dg.op(
        pool=WAREHOUSE_POOL,
        description="Move quarantined lines the current parsers accept into raw.events.",
    )
    def replay_quarantined_lines(
        context: dg.OpExecutionContext, config: ReplayConfig, warehouse: DuckDBResource
    ) -> None:
        sources = [
            s for s in project.config.sources if not config.sources or s.name in config.sources
        ]
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = []
        with warehouse_session(project, warehouse) as conn:
            for source in sources:
                result = replay_quarantine(conn, source, now)
                rows.append(f"| {result.source} | {result.examined:,} | {result.moved:,} |")
                context.log.info(
                    f"{source.name}: {result.moved} of {result.examined} replayable lines moved to events"
                )
        context.log_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey(["raw", "events"]),
                metadata={
                    "replay": dg.MetadataValue.md(
                        "| source | examined | moved |\n|---|---:|---:|\n" + "\n".join(rows)
                    )
                },
            )
        )

    @dg.job(
        name="replay_quarantine_job",
        description="Re-parse quarantined lines with the current config.",
    )
    def replay_quarantine_job() -> None:
        replay_quarantined_lines()

    return replay_quarantine_job
