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


def test_one_metric_over_sources_that_store_a_field_at_different_paths(tmp_path):
    project = write_project(tmp_path, two_sources)
    sources = {s.name: s for s in project.config.sources}
    spec = MetricSpec.model_validate(
        {
            "name": "latency_avg",
            "description": "mean latency across the old and new formats",
            "source": ["old", "new"],
            "aggregation": "avg",
            "field": "latency",
            "window": "1h",
        }
    )
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
