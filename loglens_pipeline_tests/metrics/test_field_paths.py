"""Renamed fields: a metric uses the name, each source says where the value lives."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from loglens_pipeline.config.metrics import MetricSpec
from loglens_pipeline.metrics.compiler import compile_metric
from loglens_pipeline.metrics.compute import compute_metric
from loglens_pipeline.warehouse.schema import ensure_raw_schema
from loglens_pipeline_tests.conftest import write_project


def two_sources(data: dict) -> None:
    for name, path in (("old", "timing.latency_ms"), ("new", "latency")):
        data["sources"].append(
            {
                "name": name,
                "glob": f"{name}/*.jsonl",
                "format": "json",
                "fields": {"latency": {"path": path, "type": "float"}},
            }
        )


def latency_avg() -> MetricSpec:
    return MetricSpec.model_validate(
        {
            "name": "latency_avg",
            "description": "mean latency across the old and new formats",
            "source": ["old", "new"],
            "aggregation": "avg",
            "field": "latency",
            "window": "1h",
        }
    )


def test_one_metric_over_sources_that_store_a_field_at_different_paths(tmp_path):
    project = write_project(tmp_path, two_sources)
    sources = {s.name: s for s in project.config.sources}
    spec = latency_avg()
    metric = compile_metric(spec, sources)
    rows = [
        ("old", {"timing": {"latency_ms": 10}}),
        ("old", {"timing": {"latency_ms": 30}}),
        ("new", {"latency": 50}),
        ("new", {"latency": "not a number"}),  # keep: the event stays, the value is NULL
    ]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        ensure_raw_schema(conn)
        for i, (source, attrs) in enumerate(rows):
            conn.execute(
                "INSERT INTO raw.events VALUES (?, ?, NULL, NULL, NULL, 'INFO', 'm', ?, 'f', 'p', ?, ?, 1)",
                [
                    datetime(2026, 11, 20, 10, i),
                    source,
                    json.dumps(attrs),
                    i,
                    datetime(2026, 11, 21),
                ],
            )
        frame = compute_metric(
            conn, metric, datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11)
        ).frame
    assert frame[["value", "events"]].values.tolist() == [[30.0, 4.0]]
    renamed = spec.model_copy(update={"source": ["old"]})
    assert compile_metric(renamed, sources).code_version != metric.code_version


def ingest_lines(project, source_name: str, lines: list[dict]) -> None:
    from loglens_pipeline.ingest.identity import stat_file
    from loglens_pipeline.ingest.ingestor import ingest_files
    from loglens_pipeline.warehouse.connection import connect

    source = next(s for s in project.config.sources if s.name == source_name)
    path = project.logs_dir / source_name / "a.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [(source, stat_file(path, source.name))]
        ingest_files(conn, work, project.config.ingest, ingested_at=datetime(2026, 11, 21))


def ingest_latencies(project) -> None:
    """Latencies 10 and 30 at `timing.latency_ms` (old), 50 and "x" at `latency` (new)."""
    ts = "2026-11-20T10:0{}:00Z"
    ingest_lines(
        project,
        "old",
        [{"ts": ts.format(i), "timing": {"latency_ms": v}} for i, v in ((0, 10), (1, 30))],
    )
    ingest_lines(
        project, "new", [{"ts": ts.format(2), "latency": 50}, {"ts": ts.format(3), "latency": "x"}]
    )


def test_metrics_read_the_typed_columns_ingestion_wrote(tmp_path):
    project = write_project(tmp_path, two_sources)
    sources = {s.name: s for s in project.config.sources}
    metric = compile_metric(latency_avg(), sources)
    ingest_latencies(project)
    window = (datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11))
    columns = {column.source: column.name for column in metric.field_columns}
    assert len(set(columns.values())) == 2, "one typed column per source declaration"

    with duckdb.connect(str(project.warehouse_path)) as conn:
        stored = conn.execute(
            f'SELECT "{columns["old"]}", "{columns["new"]}" FROM raw.events ORDER BY byte_offset, source'
        ).fetchall()
        assert sorted(v for row in stored for v in row if v is not None) == [10.0, 30.0, 50.0]
        expected = [[30.0, 4.0]]
        assert (
            compute_metric(conn, metric, *window).frame[["value", "events"]].values.tolist()
            == expected
        )
        # The typed columns are what is read: emptied attrs change nothing.
        conn.execute("UPDATE raw.events SET attrs = '{}'")
        assert (
            compute_metric(conn, metric, *window).frame[["value", "events"]].values.tolist()
            == expected
        )


def test_a_field_declared_after_ingestion_is_filled_from_attrs_when_its_column_is_added(tmp_path):
    def undeclared(data: dict) -> None:
        two_sources(data)
        for source in data["sources"][-2:]:
            del source["fields"]

    before = write_project(tmp_path / "before", undeclared)
    ingest_latencies(before)
    # The same warehouse, now with the field declared by both sources.
    after = write_project(tmp_path / "after", two_sources)
    after.warehouse_path.parent.mkdir(parents=True)
    after.warehouse_path.write_bytes(before.warehouse_path.read_bytes())
    metric = compile_metric(latency_avg(), {s.name: s for s in after.config.sources})
    window = (datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11))
    with duckdb.connect(str(after.warehouse_path)) as conn:
        result = compute_metric(conn, metric, *window).frame[["value", "events"]].values.tolist()
        assert result == [[30.0, 4.0]], "the same as if the field had been declared all along"
        filled = {
            column.source: conn.execute(
                f'SELECT count("{column.name}") FROM raw.events WHERE source = ?', [column.source]
            ).fetchall()[0][0]
            for column in metric.field_columns
        }
        assert filled == {"old": 2, "new": 1}
        # Filled once, when added: the column is the stored value from then on.
        conn.execute("UPDATE raw.events SET attrs = '{}'")
        assert compute_metric(conn, metric, *window).frame[["value"]].values.tolist() == [[30.0]]
