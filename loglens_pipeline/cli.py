"""The `loglens` command: demo, validate, ingest, backfill, query, quarantine and dev.

Summaries go to stdout; progress (bars, phases) goes to stderr, so piping keeps only results.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from loglens_pipeline.config import ConfigError, ProjectPaths
from loglens_pipeline.config.paths import REPO_ROOT

app = typer.Typer(
    help="LogLens: log files to a DuckDB warehouse of events, metrics and anomalies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def _paths(config_dir: Path | None) -> ProjectPaths:
    paths = ProjectPaths.from_env()
    return ProjectPaths(config_dir.resolve(), paths.data_dir) if config_dir else paths


def _load(config_dir: Path | None):
    from loglens_pipeline.defs.project import Project

    try:
        return Project.load(_paths(config_dir))
    except ConfigError as exc:
        console.print(f"[bold red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


ConfigDirOption = typer.Option(
    None, "--config-dir", help="defaults to $LOGLENS_CONFIG_DIR or ./configs"
)


@app.command()
def validate(config_dir: Path | None = ConfigDirOption) -> None:
    """Check all YAML under configs/; errors name the file, the key and what is wrong."""
    project = _load(config_dir)
    config = project.config
    console.print(
        f"[green]OK[/] {project.paths.config_dir}: {len(config.sources)} sources "
        f"({', '.join(s.name for s in config.sources)}), {len(project.metrics)} metrics"
    )


@app.command()
def demo(
    hours: int = typer.Option(24, help="hours of sample logs, ending at the last closed hour"),
    lines_per_hour: int = typer.Option(6000, help="average JSON lines per hour"),
    keep: bool = typer.Option(False, help="keep an earlier demo's warehouse and sample files"),
) -> None:
    """Generate sample logs, ingest them through Dagster, and print what landed in the warehouse."""
    from loglens_pipeline.cli_progress import LiveProgress
    from loglens_pipeline.demo import run_demo
    from loglens_pipeline.warehouse.summary import EXAMPLE_QUERIES

    try:
        with LiveProgress() as live:
            result = run_demo(
                hours=hours, lines_per_hour=lines_per_hour, reset=not keep, log=live.phase
            )
            live.phase(None)
    except ConfigError as exc:
        console.print(f"[bold red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    s = result.summary
    table = Table(title="LogLens warehouse", show_header=False)
    table.add_row("files", f"{s.files:,}")
    table.add_row("lines", f"{s.lines:,}")
    table.add_row(
        "events",
        f"{s.events:,}  " + ", ".join(f"{k}: {v:,}" for k, v in s.events_by_source.items()),
    )
    table.add_row(
        "quarantined",
        f"{s.quarantined:,}  " + ", ".join(f"{k}: {v}" for k, v in s.quarantine_reasons.items()),
    )
    table.add_row(
        "hours covered",
        f"{s.hours} ({s.first_hour:%Y-%m-%d %H:00} .. {s.last_hour:%Y-%m-%d %H:00} UTC)"
        if s.first_hour
        else "0",
    )
    incident = result.manifest.incident
    if incident:
        table.add_row(
            "injected incident",
            f"{incident.service} {incident.start:%H:%M}-{incident.end:%H:%M} UTC",
        )
    table.add_row("runs", ", ".join(run_id[:8] for run_id in result.run_ids))
    table.add_row("warehouse", str(result.warehouse))
    table.add_row("reader copy (BI)", str(result.reader))
    table.add_row("dagster home", str(result.dagster_home))
    console.print(table)
    if result.metrics:
        metrics = Table(title="Metrics (peak value over the sample)")
        for column in ("metric", "rows", "peak", "at (UTC)", "group"):
            metrics.add_column(column, justify="right" if column in ("rows", "peak") else "left")
        for m in result.metrics:
            metrics.add_row(
                m.name,
                f"{m.rows:,}",
                "-" if m.peak_value is None else f"{m.peak_value:,.4g}",
                f"{m.peak_at:%Y-%m-%d %H:%M}" if m.peak_at else "-",
                m.peak_group,
            )
        console.print(metrics)
    if result.anomalies:
        found = Table(title="Anomalies found (strongest first)")
        for column in ("metric", "series", "at (UTC)", "value", "expected", "score"):
            numeric = column in ("value", "expected", "score")
            found.add_column(column, justify="right" if numeric else "left")
        for metric, series, at, value, expected, score in result.anomalies:
            found.add_row(
                metric,
                series or "-",
                f"{at:%Y-%m-%d %H:%M}",
                f"{value:,.4g}",
                f"{expected:,.4g}",
                f"{score:,.1f}",
            )
        console.print(found)
        if incident:
            console.print(
                f"The injected incident: {incident.service} between {incident.start:%H:%M} and "
                f"{incident.end:%H:%M} UTC."
            )
    console.print(
        f'\nTry these with `loglens query "..."`, or `duckdb -readonly {result.reader}` '
        "(the reader copy, which never blocks the pipeline):"
    )
    for title, sql in EXAMPLE_QUERIES.items():
        console.print(f"\n[bold]{title}[/]")
        console.print(Syntax(sql.strip(), "sql", theme="ansi_dark", word_wrap=True))
    console.print(
        "\nSee the runs and the asset graph: [bold]loglens dev[/] then http://127.0.0.1:3000"
    )


@app.command()
def ingest(config_dir: Path | None = ConfigDirOption) -> None:
    """Ingest every new byte of every watched file now, as one Dagster run."""
    from loglens_pipeline.cli_progress import LiveProgress, ingest_table
    from loglens_pipeline.definitions import build_definitions
    from loglens_pipeline.instance import open_instance
    from loglens_pipeline.runs import run_ingest

    project = _load(config_dir)
    instance = open_instance(project.paths.data_dir / "dagster_home")
    with LiveProgress() as live:
        result = run_ingest(build_definitions(project), instance, trigger="cli")
    console.print(ingest_table(live.ingestions[-1] if live.ingestions else None, result.run_id))
    raise typer.Exit(0 if result.success else 1)


@app.command()
def query(
    sql: str = typer.Argument(..., help="a SQL query over raw.*, metrics.*, analytics.*"),
    output: str = typer.Option("table", "--format", help="table, csv or json"),
    limit: int = typer.Option(1000, help="at most this many rows"),
) -> None:
    """Query the reader copy of the warehouse (read-only; never blocks the pipeline)."""
    import duckdb

    from loglens_pipeline.warehouse.connection import connect

    project = _load(None)
    if not project.reader_path.exists():
        console.print(
            f"[red]no reader copy at {project.reader_path}[/]: run `loglens demo` or a pipeline run first"
        )
        raise typer.Exit(1)
    try:
        with connect(project.reader_path, project.config.warehouse, read_only=True) as conn:
            frame = conn.execute(sql).df().head(limit)
    except duckdb.Error as exc:
        console.print(f"[red]{type(exc).__name__}:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if output == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"[dim]{len(frame)} rows from {project.reader_path}[/]")


@app.command()
def quarantine(
    replay: bool = typer.Option(False, help="re-parse replayable lines with the current config"),
    source: list[str] = typer.Option([], help="only these sources (repeatable)"),
) -> None:
    """Quarantined lines by source and reason with an example; --replay moves fixed ones to events."""
    project = _load(None)
    if replay:
        from loglens_pipeline.definitions import build_definitions
        from loglens_pipeline.instance import open_instance
        from loglens_pipeline.runs import run_publish, run_replay

        instance = open_instance(project.paths.data_dir / "dagster_home")
        defs = build_definitions(project)
        result = run_replay(defs, instance, list(source), trigger="cli")
        for event in result.all_events:
            if event.event_type_value == "ASSET_OBSERVATION":
                console.print(event.event_specific_data.asset_observation.metadata["replay"].value)
        if not (result.success and run_publish(defs, instance, trigger="cli").success):
            raise typer.Exit(1)
    query(
        "SELECT source, reason, lines, first_seen, last_seen, left(example, 80) AS example "
        "FROM analytics.quarantine_by_reason ORDER BY lines DESC",
        output="table",
        limit=1000,
    )


def _hour(text: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d-%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(minute=0)
        except ValueError:
            continue
    raise typer.BadParameter(f"{text!r} is not an hour like 2026-11-20T13 (UTC)")


@app.command()
def backfill(
    start: str = typer.Option(..., "--from", help="first hour, UTC, e.g. 2026-11-20T00"),
    end: str = typer.Option(..., "--to", help="last hour (inclusive), UTC, e.g. 2026-11-20T23"),
    config_dir: Path | None = ConfigDirOption,
) -> None:
    """Materialize all metrics (and anomalies) for a range of hours as one single run."""
    import time

    from loglens_pipeline.cli_progress import LiveProgress, backfill_table
    from loglens_pipeline.definitions import build_definitions
    from loglens_pipeline.instance import open_instance
    from loglens_pipeline.runs import run_metrics_range

    first, last = _hour(start), _hour(end)
    if last < first:
        raise typer.BadParameter("--to must not be before --from")
    project = _load(config_dir)
    instance = open_instance(project.paths.data_dir / "dagster_home")
    hours = int((last - first).total_seconds() // 3600) + 1
    defs = build_definitions(project)
    started = time.perf_counter()
    with LiveProgress() as live:
        live.phase(f"backfilling {len(project.metrics)} metrics over {hours} hours as one run")
        result = run_metrics_range(defs, instance, first, last, trigger="cli")
        live.phase(None)
    console.print(backfill_table(result, first, last, time.perf_counter() - started))
    console.print(
        f"run {result.run_id}: {'[green]success[/]' if result.success else '[red]failed[/]'}"
    )
    raise typer.Exit(0 if result.success else 1)


@app.command()
def dev(
    port: int = typer.Option(3000, "--port", "-p", help="webserver port"),
    host: str = typer.Option("127.0.0.1", "--host", "-h", help="webserver host"),
) -> None:
    """Start the Dagster webserver and daemon with the shipped dagster.yaml and workspace.yaml."""
    from loglens_pipeline.instance import prepare_dagster_home

    project = _load(None)
    home = prepare_dagster_home(
        Path(os.environ.get("DAGSTER_HOME") or project.paths.data_dir / "dagster_home")
    )
    os.environ["DAGSTER_HOME"] = str(home)
    project.logs_dir.mkdir(parents=True, exist_ok=True)  # the folder the sensor watches
    console.print(f"DAGSTER_HOME={home}  UI: http://{host}:{port}")
    console.print(f"watching {project.logs_dir}: drop log files there")
    # `dagster dev` ignores SIGTERM when SIGINT was ignored by the parent: restore defaults.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(REPO_ROOT)
    os.execv(
        str(dagster),
        [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", host, "-p", str(port)],
    )


if __name__ == "__main__":
    app()
