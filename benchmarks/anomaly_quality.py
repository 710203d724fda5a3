"""Detection quality of the anomaly detectors on seeded, labelled synthetic metric series.

Generates 5-minute series over several weeks (daily and weekly seasonality, Poisson / heavy-tailed
/ binomial noise, missing buckets and gaps), injects labelled anomalies of one kind per series
(spike, dip, level_shift, drift) plus clean series, scores every series the way live runs do
(the first week is history, every later point only sees points before it: `score_points`
guarantees this, `--hourly` checks it by scoring hour by hour), and prints event-level
precision, recall and F1 per detector and per kind, and false alerts per series per week on the
clean series.

    .venv/bin/python benchmarks/anomaly_quality.py            # full run (~1 minute)
    .venv/bin/python benchmarks/anomaly_quality.py --smoke    # tiny sizes for CI (< 10 s)

Matching: an injected anomaly is detected when any flagged point falls inside its window
[start, end]; flagged points up to `--grace` after an anomaly's end are the same incident
(recovery) and count neither way; every other cluster of consecutive flagged points (adjacent
rows of the series) is one false positive, and one false alert on clean series.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

from loglens_pipeline.anomaly import score_points
from loglens_pipeline.config.metrics import AnomalySpec

STEP = timedelta(minutes=5)
PER_DAY = 288
PER_HOUR = 12
KINDS = ("spike", "dip", "level_shift", "drift")
FAMILIES = ("requests", "latency", "error_ratio")
START = pd.Timestamp("2026-01-05")  # a Monday, naive UTC


@dataclass
class Event:
    start: int  # first anomalous row (index into the full grid)
    end: int  # last anomalous row, inclusive
    kind: str


@dataclass
class Series:
    name: str
    family: str
    kind: str  # the one anomaly kind injected, or "clean"
    frame: pd.DataFrame  # ts, value (missing buckets removed)
    events: list[Event] = field(default_factory=list)  # scored events (after the history)


# --------------------------------------------------------------------------- generation


def _daily_shape(rng: np.random.Generator, hours: np.ndarray) -> tuple[np.ndarray, float]:
    """Daytime activity in [0, 1] (a main afternoon peak, sometimes a morning bump), and the
    hour of its nightly trough."""
    peak_hour = rng.uniform(11.0, 16.0)
    width = rng.uniform(3.5, 6.0)
    distance = np.minimum(np.abs(hours - peak_hour), 24 - np.abs(hours - peak_hour))
    shape = np.exp(-0.5 * (distance / width) ** 2)
    if rng.random() < 0.5:
        bump = rng.uniform(8.0, 10.0)
        distance = np.minimum(np.abs(hours - bump), 24 - np.abs(hours - bump))
        shape = shape + rng.uniform(0.2, 0.5) * np.exp(-0.5 * (distance / 1.2) ** 2)
    return shape / shape.max(), (peak_hour + 12.0) % 24


def _clean(rng: np.random.Generator, family: str, n: int, volume: tuple[float, float]):
    """(values, clean mean, noise sigma) per point of one clean seasonal 5-minute series.

    Load = night floor + daytime activity; on weekends the daytime part shrinks (people are
    away, background traffic is not), changing smoothly over the 6 hours around the nightly
    trough, and the load grows or shrinks slowly from week to week.
    """
    index = np.arange(n)
    hours = (index % PER_DAY) / PER_HOUR
    shape, trough = _daily_shape(rng, hours)
    days = index / PER_DAY - trough / 24.0  # days counted from a trough, not from midnight
    step = np.where((np.floor(days) % 7) >= 5, rng.uniform(0.4, 0.85), 1.0)  # Monday START
    ramp = 6 * PER_HOUR + 1  # a linear change over the 6 hours around the trough
    weekend = np.convolve(np.pad(step, ramp // 2, mode="edge"), np.ones(ramp) / ramp, "valid")
    growth = 1.0 + rng.uniform(-0.03, 0.06) * index / (7 * PER_DAY)  # per week
    floor = rng.uniform(0.15, 0.45)
    load = (floor + (1 - floor) * shape * weekend) * growth
    if family == "requests":  # Poisson counts
        rate = np.exp(rng.uniform(np.log(volume[0]), np.log(volume[1]))) * load
        return rng.poisson(rate).astype(float), rate, np.sqrt(np.maximum(rate, 1.0))
    if family == "latency":  # slower under load, log-normal noise (skewed to the right)
        level = rng.uniform(40, 400) * (1 + rng.uniform(0.05, 0.4) * (load - load.mean()))
        cv = rng.uniform(0.02, 0.08)
        return level * np.exp(cv * rng.standard_normal(n) - cv * cv / 2), level, cv * level
    rate = np.exp(rng.uniform(np.log(200), np.log(5000))) * load  # requests behind the ratio
    requests = np.maximum(rng.poisson(rate), 1)
    p = rng.uniform(0.005, 0.05)
    sigma = np.sqrt(p * (1 - p) / np.maximum(rate, 1.0))
    return rng.binomial(requests, p) / requests, np.full(n, p), sigma


# Anomalies, in units of the local noise sigma (rows are 5-minute buckets, bounds inclusive).
_SIZE = {"spike": (6, 12), "dip": (6, 12), "level_shift": (4, 8), "drift": (8, 16)}
_LENGTH = {"spike": (1, 3), "dip": (1, 6), "level_shift": (12, 96), "drift": (24, 72)}
# Dips need room below the level: error ratios near 0 cannot dip, small counts hardly.
_DIP_FAMILIES = ("requests", "latency")


def _effect(rng, kind: str, sign: float, sigma: np.ndarray) -> np.ndarray:
    size = rng.uniform(*_SIZE[kind]) * sigma
    if kind == "drift":  # a ramp from 0 to its full size, then an abrupt end (a restart)
        size = size * np.arange(1, sigma.size + 1) / sigma.size
    return sign * size


def _place(rng, kind, mean, sigma, region, taken) -> tuple[int, int, np.ndarray] | None:
    """A window that overlaps no other (one day apart) and where the effect is physically
    possible: a downward effect must not need values below zero (it would be clipped)."""
    lo, hi = _LENGTH[kind]
    for _attempt in range(200):
        length = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(region[0], region[1] - length))
        end = start + length - 1
        if any(not (end + PER_DAY < a or start > b + PER_DAY) for a, b in taken):
            continue
        sign = 1.0 if kind == "spike" else -1.0 if kind == "dip" else float(rng.choice([-1, 1]))
        effect = _effect(rng, kind, sign, sigma[start : end + 1])
        if sign < 0 and np.any(mean[start : end + 1] + 1.5 * effect < 0):
            if kind == "dip":
                continue
            effect = -effect  # a shift or drift that cannot go down goes up
        return start, end, effect
    return None


def generate(
    seed: int, per_kind: int, clean: int, weeks: int, history_weeks: int = 1, events: int = 3
) -> list[Series]:
    """Seeded series: `per_kind` per anomaly kind (`events` scored ones each, plus one in the
    history, unlabelled, as real baselines contain incidents too) and `clean` clean series."""
    rng = np.random.default_rng(seed)
    n = weeks * 7 * PER_DAY
    first_scored = history_weeks * 7 * PER_DAY
    ts = START + pd.to_timedelta(np.arange(n) * 5, unit="min")
    out: list[Series] = []
    plan = [(kind, i) for kind in KINDS for i in range(per_kind)]
    plan += [("clean", i) for i in range(clean)]
    for number, (kind, i) in enumerate(plan):
        families = _DIP_FAMILIES if kind == "dip" else FAMILIES
        family = families[i % len(families)]
        volume = (200.0, 3000.0) if kind == "dip" else (20.0, 3000.0)
        values, mean, sigma = _clean(rng, family, n, volume)
        labelled: list[Event] = []
        taken: list[tuple[int, int]] = []
        for scored in [False] + [True] * events if kind != "clean" else []:
            region = (first_scored, n) if scored else (PER_DAY, first_scored)
            placed = _place(rng, kind, mean, sigma, region, taken)
            if placed is None:
                continue
            start, end, effect = placed
            taken.append((start, end))
            values[start : end + 1] = np.maximum(values[start : end + 1] + effect, 0.0)
            if scored:
                labelled.append(Event(start, end, kind))
        keep = rng.random(n) >= 0.01  # 1% of buckets missing ...
        for _gap in range(int(rng.integers(0, 3))):  # ... and up to two gaps of 1-3 hours
            at = int(rng.integers(0, n - 36))
            keep[at : at + int(rng.integers(12, 37))] = False
        for event in labelled:
            keep[event.start] = True  # the anomaly's first point is always reported
        frame = pd.DataFrame({"ts": ts[keep], "value": values[keep]}).reset_index(drop=True)
        out.append(Series(f"{kind}-{family}-{number}", family, kind, frame, labelled))
    return out


# --------------------------------------------------------------------------- evaluation


@dataclass
class Tally:
    events: int = 0
    detected: int = 0
    false_positives: int = 0
    series: int = 0
    weeks: float = 0.0  # series-weeks scored

    def add(self, other: Tally) -> None:
        for name in ("events", "detected", "false_positives", "series", "weeks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def precision(self) -> float:
        found = self.detected + self.false_positives
        return self.detected / found if found else float("nan")

    @property
    def recall(self) -> float:
        return self.detected / self.events if self.events else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def alerts_per_week(self) -> float:
        return self.false_positives / self.weeks if self.weeks else float("nan")


def score_series(
    series: Series, spec: AnomalySpec, history_rows: int, hourly: bool
) -> pd.DataFrame:
    """Score everything after the first `history_rows` grid rows, as live runs would."""
    cut = START + history_rows * STEP
    frame = series.frame
    history, new = frame[frame.ts < cut], frame[frame.ts >= cut]
    if not hourly:
        return score_points(history, new, spec, step=STEP)
    parts = []
    hours = new.ts.dt.floor("h")
    for hour, rows in new.groupby(hours, sort=True):
        past = frame[frame.ts < hour]
        parts.append(score_points(past, rows, spec, step=STEP))
    return pd.concat(parts)


def evaluate(series: Series, scored: pd.DataFrame, grace_rows: int, weeks: float) -> Tally:
    rows = ((scored.ts - START) // STEP).to_numpy()
    flags = scored.is_anomaly.to_numpy()
    tally = Tally(events=len(series.events), series=1, weeks=weeks)
    for event in series.events:
        inside = (rows >= event.start) & (rows <= event.end)
        tally.detected += bool(np.any(flags & inside))
    excused = np.zeros(rows.size, dtype=bool)
    for event in series.events:
        excused |= (rows >= event.start) & (rows <= event.end + grace_rows)
    flagged = np.flatnonzero(flags)
    if flagged.size:
        cluster = np.concatenate([[0], np.cumsum(np.diff(flagged) > 1)])
        for number in np.unique(cluster):
            members = flagged[cluster == number]
            tally.false_positives += not excused[members].any()
    return tally


@dataclass
class Config:
    label: str
    spec: AnomalySpec


def run(
    configs: list[Config],
    series: list[Series],
    history_rows: int,
    grace_rows: int,
    weeks: float,
    hourly: bool,
):
    results: dict[str, dict[str, Tally]] = {}
    timings: dict[str, float] = {}
    for config in configs:
        per_kind = {kind: Tally() for kind in (*KINDS, "clean")}
        for item in series:
            started = time.process_time()
            scored = score_series(item, config.spec, history_rows, hourly)
            timings[config.label] = timings.get(config.label, 0.0) + time.process_time() - started
            per_kind[item.kind].add(evaluate(item, scored, grace_rows, weeks))
        results[config.label] = per_kind
    return results, timings


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def report(results, timings, n_series: int) -> list[str]:
    lines = [
        "| detector | kind | events | detected | false pos. | precision | recall | F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    summary = [
        "| detector | precision | recall | F1 | false alerts / series / week (clean) | "
        "scoring time (all series) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, per_kind in results.items():
        overall = Tally()
        for kind in KINDS:
            tally = per_kind[kind]
            overall.add(tally)
            lines.append(
                f"| {label} | {kind} | {tally.events} | {tally.detected} | "
                f"{tally.false_positives} | {_fmt(tally.precision)} | {_fmt(tally.recall)} | "
                f"{_fmt(tally.f1)} |"
            )
        clean = per_kind["clean"]
        overall.false_positives += clean.false_positives
        lines.append(
            f"| {label} | **overall** | {overall.events} | {overall.detected} | "
            f"{overall.false_positives} | {_fmt(overall.precision)} | {_fmt(overall.recall)} | "
            f"**{_fmt(overall.f1)}** |"
        )
        summary.append(
            f"| {label} | {_fmt(overall.precision)} | {_fmt(overall.recall)} | "
            f"**{_fmt(overall.f1)}** | {_fmt(clean.alerts_per_week)} | "
            f"{timings[label]:.2f} s |"
        )
    return [*summary, "", *lines]


def header(argv: list[str]) -> list[str]:
    executable = os.path.relpath(sys.executable) if sys.executable else "python"
    if executable.startswith(".."):
        executable = sys.executable
    return [
        "# LogLens anomaly detection quality",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.node()}, {_bench.cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.machine()} {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}",
        f"- command: {' '.join([executable, *argv])}",
    ]


RECOMMENDED = {"threshold": 5.0, "baseline": "28d"}  # see docs/anomaly.md


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI (< 10 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=12, help="series per anomaly kind")
    parser.add_argument("--clean", type=int, default=24, help="clean seasonal series")
    parser.add_argument("--weeks", type=int, default=6, help="weeks per series, history included")
    parser.add_argument("--history-weeks", type=int, default=3, help="weeks given as history")
    parser.add_argument("--grace", type=int, default=12, help="rows after an anomaly excused")
    parser.add_argument("--methods", default="zscore,robust,seasonal")
    parser.add_argument(
        "--sweep",
        default="3.5,4,4.5,5.5,6",
        help="extra thresholds for the seasonal detector ('' none)",
    )
    parser.add_argument("--hourly", action="store_true", help="score hour by hour (slow)")
    args = parser.parse_args(argv[1:])
    if args.smoke:
        args.per_kind, args.clean, args.weeks, args.history_weeks = 1, 2, 2, 1
        args.sweep = ""

    methods = args.methods.split(",")
    series = generate(args.seed, args.per_kind, args.clean, args.weeks, args.history_weeks)
    history_rows = args.history_weeks * 7 * PER_DAY
    weeks = args.weeks - args.history_weeks
    sections = [
        (
            f"Recommended settings (threshold {RECOMMENDED['threshold']}, "
            f"baseline {RECOMMENDED['baseline']}), every detector",
            [Config(m, AnomalySpec(method=m, **RECOMMENDED)) for m in methods],
            True,
        ),
        (
            "AnomalySpec defaults (threshold 3.5, baseline 7d), every detector",
            [Config(m, AnomalySpec(method=m)) for m in methods],
            False,
        ),
    ]
    if args.sweep and "seasonal" in methods:
        thresholds = [float(value) for value in args.sweep.split(",")]
        sections.append(
            (
                f"Seasonal, baseline {RECOMMENDED['baseline']}, other thresholds",
                [
                    Config(
                        f"seasonal @ {t}",
                        AnomalySpec(
                            method="seasonal", threshold=t, baseline=RECOMMENDED["baseline"]
                        ),
                    )
                    for t in thresholds
                ],
                False,
            )
        )
    print("\n".join(header(argv)))
    print(
        f"- data: seed {args.seed}; {len(series)} series ({args.per_kind} per kind x "
        f"{len(KINDS)} kinds, {args.clean} clean) of {args.weeks} weeks of 5-minute buckets; "
        f"the first {args.history_weeks} week(s) are history, {weeks} scored "
        f"({'hour by hour' if args.hourly else 'one no-look-ahead call per series'}); "
        f"grace {args.grace} rows; other settings at their defaults (min_history 12, "
        "direction both, min_change 0)"
    )
    print("- times are CPU seconds to score all series")
    for title, configs, detailed in sections:
        results, timings = run(configs, series, history_rows, args.grace, weeks, args.hourly)
        lines = report(results, timings, len(series))
        summary = lines[: lines.index("")]
        print()
        print(f"## {title}")
        print()
        print("\n".join(summary))
        if detailed:
            print()
            print("\n".join(lines[lines.index("") + 1 :]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
