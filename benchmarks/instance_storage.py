"""Dagster instance storage: the cost of one event, stock SQLite storage against LogLens's.

A metrics run writes about six events per asset and reads the latest materializations of its
inputs; a backfill writes two per (asset, partition). For each storage (Dagster's stock
`DagsterSqliteStorage`, and `PooledSqliteStorage` that `dagster.yaml` ships) in a fresh
DAGSTER_HOME: `--events` engine events into one run, `--events` asset materializations (the
kind mirrored into the index shard), and `--events` latest-materialization lookups; ms per
operation, min / median / max of `--runs` runs.

    .venv/bin/python benchmarks/instance_storage.py
    .venv/bin/python benchmarks/instance_storage.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench
import dagster as dg
from dagster._core.events import (
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
    StepMaterializationData,
)

STORAGES = {
    "stock": {"sqlite": {"base_dir": {"env": "DAGSTER_HOME"}}},
    "loglens": None,  # the shipped dagster.yaml's storage
}


def _engine_event(i: int) -> DagsterEvent:
    return DagsterEvent(
        DagsterEventType.ENGINE_EVENT.value,
        "benchmark",
        message=f"event {i}",
        event_specific_data=EngineEventData(),
    )


def _materialization(i: int) -> DagsterEvent:
    materialization = dg.AssetMaterialization(asset_key=f"asset_{i % 20}", partition=str(i))
    return DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        "benchmark",
        event_specific_data=StepMaterializationData(materialization),
    )


def measure(storage: dict | None, events: int) -> dict[str, float]:
    """ms per engine event, per materialization and per lookup, in a fresh DAGSTER_HOME."""
    from loglens_pipeline.instance import shipped_instance_config

    config = shipped_instance_config()
    if storage is not None:
        config["storage"] = storage
    with (
        tempfile.TemporaryDirectory() as home,
        dg.instance_for_test(overrides=config, temp_dir=home) as instance,
    ):
        run_id = instance.create_run_for_job(
            dg.GraphDefinition("benchmark").to_job(), run_id=None
        ).run_id
        figures = {}
        for name, build in (
            ("engine event", _engine_event),
            ("materialization", _materialization),
        ):
            start = time.perf_counter()
            for i in range(events):
                instance.report_dagster_event(build(i), run_id)
            figures[name] = (time.perf_counter() - start) / events * 1000
        start = time.perf_counter()
        for i in range(events):
            instance.get_latest_materialization_event(dg.AssetKey(f"asset_{i % 20}"))
        figures["latest lookup"] = (time.perf_counter() - start) / events * 1000
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="of each kind, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.runs = 10, 1

    _bench.header("Dagster instance storage: ms per event, stock SQLite storage against LogLens's")
    print(f"{args.events} of each per run, {args.runs} run(s), each in a fresh DAGSTER_HOME\n")
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.runs):
        for label, storage in STORAGES.items():
            for name, ms in measure(storage, args.events).items():
                results.setdefault(name, {}).setdefault(label, []).append(ms)

    print(
        f"{'operation':<18} {'stock ms min / median / max':>30} {'loglens ms min / median / max':>32} {'speed-up':>9}"
    )
    for name, by_label in results.items():
        stock, ours = by_label["stock"], by_label["loglens"]
        speedup = _bench.median(stock) / _bench.median(ours)
        print(
            f"{name:<18} {_bench.min_med_max(stock, '.2f'):>30}"
            f" {_bench.min_med_max(ours, '.2f'):>32} {speedup:>8.1f}x"
        )
    _bench.footer()


if __name__ == "__main__":
    main()
