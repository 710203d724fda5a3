"""The quality benchmark's generator, matching rules and its --smoke run."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from loglens_pipeline.config.paths import REPO_ROOT


@pytest.fixture(scope="module")
def bench():
    path = REPO_ROOT / "benchmarks" / "anomaly_quality.py"
    spec = importlib.util.spec_from_file_location("anomaly_quality", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["anomaly_quality"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("anomaly_quality", None)


def test_generator_is_seeded_and_labels_scored_events(bench):
    a = bench.generate(3, per_kind=1, clean=1, weeks=2, history_weeks=1)
    b = bench.generate(3, per_kind=1, clean=1, weeks=2, history_weeks=1)
    assert [s.name for s in a] == [s.name for s in b]
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.frame, y.frame)
    first_scored = 7 * bench.PER_DAY
    for series in a:
        if series.kind == "clean":
            assert series.events == []
        else:
            assert len(series.events) == 3
            assert all(e.start >= first_scored and e.kind == series.kind for e in series.events)
        assert series.frame.value.ge(0).all()
        assert len(series.frame) < 14 * bench.PER_DAY  # some buckets are missing


def test_event_matching_and_alert_clusters(bench):
    rows = np.arange(100, 200)
    ts = bench.START + rows * bench.STEP
    series = bench.Series(
        "s", "requests", "spike", pd.DataFrame(), [bench.Event(120, 122, "spike")]
    )
    flags = np.zeros(rows.size, dtype=bool)
    flags[[21, 30, 31, 32, 150 - 100, 160 - 100]] = True  # in window, 3 in grace, 2 apart
    scored = pd.DataFrame({"ts": ts, "is_anomaly": flags})
    tally = bench.evaluate(series, scored, grace_rows=12, weeks=1.0)
    assert (tally.detected, tally.events, tally.false_positives) == (1, 1, 2)
    assert tally.precision == pytest.approx(1 / 3)
    assert tally.recall == 1.0


@pytest.mark.slow
def test_smoke_run_prints_the_tables(bench, capsys):
    assert bench.main(["anomaly_quality.py", "--smoke"]) == 0
    out = capsys.readouterr().out
    assert "- machine:" in out and "- date:" in out and "- command:" in out
    for method in ("zscore", "robust", "seasonal"):
        assert f"| {method} | **overall** |" in out
    assert "false alerts / series / week" in out
