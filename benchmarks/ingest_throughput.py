"""Ingest throughput of LogLens's real ingestion path against reference implementations of the job.

Generates seeded sample logs (`generate_sample_logs`: JSON lines from five services, and the same
traffic as an nginx combined access log; 0.5% malformed lines, 1% out-of-order lines), then, for
each format and each implementation, ingests all of that format's files into a fresh DuckDB file
in a fresh spawned child process, `--runs` times, and prints lines/s and MB/s (min / median /
max), the child's peak RSS, and the LogLens / reference ratios of the median rates.

Implementations (the same input files, the same DuckDB settings: memory_limit and threads of
configs/loglens.yaml):

* `loglens`     `ingest_files` with the shipped source config: offsets, identity, tail
                checkpoints, quarantine with reasons, one transaction per chunk (64 MiB, whole row groups).
* `python`      a per-line Python loop (`json.loads`, or `re.match` of the nginx_combined
                pattern) into lists, then one bulk INSERT from an Arrow table (timestamps parsed
                in that SQL). Unparseable lines are skipped: no quarantine, no offsets.
* `duckdb`      DuckDB alone, the engine's floor: `read_json` (JSON), or `read_csv` of whole
                lines + `regexp_extract` of the same pattern (text), into a table with
                `CREATE TABLE AS`. No offsets, no quarantine (bad lines skipped).
* `duckdb_split` (text only) the same with a regex-free split (`string_split` on `"`), the
                fastest way DuckDB parses this layout.
* `duckdb_attrs` DuckDB alone doing the same storage job as `raw.events`: the columns of
                `duckdb` plus `attrs`, every field of the event as JSON text (the whole line
                for JSON, read as whole lines with `read_csv` then `json_extract_string`; the
                pattern's named groups as a JSON object for text). No offsets, no quarantine.

Each measurement's time runs from the first byte read to the warehouse file closed (data
committed). Rates count input lines (malformed ones included) and input bytes.

    .venv/bin/python benchmarks/ingest_throughput.py                  # 1M lines per format, 3 runs
    .venv/bin/python benchmarks/ingest_throughput.py --lines 5M --runs 1
    .venv/bin/python benchmarks/ingest_throughput.py --smoke          # tiny, a few seconds
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench

SOURCES = {"json": "app", "text": "nginx"}
IMPLEMENTATIONS = {
    "json": ("loglens", "python", "duckdb", "duckdb_attrs"),
    "text": ("loglens", "python", "duckdb", "duckdb_split", "duckdb_attrs"),
}
START = datetime(2026, 11, 20, tzinfo=UTC)
HOURS = 24


@dataclass(frozen=True)
class Measurement:
    lines: int  # input lines
    rows: int  # rows stored (events, plus quarantined lines for loglens)
    size: int  # input bytes
    seconds: float
    peak_rss: int

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


# --- the implementations (each runs in its own spawned child) ------------------------------------


def _connect(target: Path, project):
    from loglens_pipeline.warehouse.connection import connect

    return connect(target, project.config.warehouse)


def run_loglens(project, source_name: str, target: Path) -> tuple[int, int]:
    import pandas  # noqa: F401  a Dagster run has it loaded (IO manager); pyarrow imports it lazily

    from loglens_pipeline.ingest.discovery import source_files
    from loglens_pipeline.ingest.identity import stat_file
    from loglens_pipeline.ingest.ingestor import ingest_files
    from loglens_pipeline.warehouse.schema import ensure_raw_schema

    source = project.config.source(source_name)
    work = [(source, stat_file(p, source.name)) for p in source_files(project.logs_dir, source)]
    with _connect(target, project) as conn:
        ensure_raw_schema(conn)
        started = time.perf_counter()
        report = ingest_files(
            conn, work, project.config.ingest, ingested_at=datetime.now(UTC).replace(tzinfo=None)
        )
    return report.total("events") + report.total("quarantined"), started


EVENTS_DDL = """CREATE TABLE events (
    event_time TIMESTAMP, service VARCHAR, host VARCHAR, level VARCHAR, message VARCHAR,
    attrs VARCHAR)"""
NGINX_DDL = """CREATE TABLE events (
    event_time TIMESTAMP, remote_addr VARCHAR, method VARCHAR, path VARCHAR, request VARCHAR,
    status INTEGER, body_bytes_sent BIGINT, http_referer VARCHAR, http_user_agent VARCHAR)"""
CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
# `duckdb_attrs` stores long text as raw.events does (zstd), the cheapest way to write it.
JSON_ATTRS_DDL = """CREATE TABLE events (
    event_time TIMESTAMP, service VARCHAR, host VARCHAR, level VARCHAR,
    message VARCHAR USING COMPRESSION zstd, status BIGINT, latency_ms DOUBLE, user_id VARCHAR,
    http_method VARCHAR, http_path VARCHAR, attrs VARCHAR USING COMPRESSION zstd)"""
NGINX_ATTRS_DDL = NGINX_DDL[:-1] + ", attrs VARCHAR USING COMPRESSION zstd)"


def run_python_json(files: list[Path], conn) -> int:
    import json

    import pyarrow as pa

    ts, level, service, host, message, attrs = [], [], [], [], [], []
    for path in files:
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    doc = json.loads(raw)
                except ValueError:  # invalid JSON or invalid UTF-8
                    continue
                if not isinstance(doc, dict) or doc.get("ts") is None:
                    continue
                ts.append(doc["ts"])
                level.append(doc.get("level"))
                service.append(doc.get("service"))
                host.append(doc.get("host"))
                message.append(doc.get("msg"))
                attrs.append(raw.rstrip(b"\r\n").decode())
    table = pa.table(
        {
            "ts": pa.array(ts, pa.string()),
            "level": pa.array(level, pa.string()),
            "service": pa.array(service, pa.string()),
            "host": pa.array(host, pa.string()),
            "message": pa.array(message, pa.string()),
            "attrs": pa.array(attrs, pa.string()),
        }
    )
    conn.execute(EVENTS_DDL)
    conn.register("parsed", table)
    return conn.execute(
        """INSERT INTO events
           SELECT * FROM (SELECT TRY_CAST(ts AS TIMESTAMPTZ)::TIMESTAMP AS event_time, service,
                                 host, upper(level), message, attrs FROM parsed)
           WHERE event_time IS NOT NULL"""
    ).fetchall()[0][0]


def run_python_text(files: list[Path], conn) -> int:
    import re

    import pyarrow as pa

    from loglens_pipeline.ingest.formats import PRESETS

    pattern = re.compile(PRESETS["nginx_combined"].pattern)
    names = (
        "time_local",
        "remote_addr",
        "method",
        "path",
        "request",
        "status",
        "body_bytes_sent",
        "http_referer",
        "http_user_agent",
    )
    columns: dict[str, list] = {name: [] for name in names}
    appenders = [(columns[name].append, name) for name in names]
    for path in files:
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    line = raw.decode()
                except UnicodeDecodeError:
                    continue
                match = pattern.match(line)
                if match is None:
                    continue
                groups = match.groupdict()
                for append, name in appenders:
                    append(groups[name])
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    conn.execute(NGINX_DDL)
    conn.register("parsed", table)
    return conn.execute(
        f"""INSERT INTO events
            SELECT * FROM (
                SELECT try_strptime(time_local, '{CLF_TIME}')::TIMESTAMP AS event_time,
                       remote_addr, method, path, request, TRY_CAST(status AS INTEGER),
                       TRY_CAST(body_bytes_sent AS BIGINT), http_referer, http_user_agent
                FROM parsed)
            WHERE event_time IS NOT NULL"""
    ).fetchall()[0][0]


def _file_list(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"


def _whole_lines(files: list[Path]) -> str:
    """Every line of `files` as one VARCHAR column `line` (invalid UTF-8 lines skipped)."""
    return (
        f"read_csv({_file_list(files)}, columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', "
        "escape='', header=false, auto_detect=false, new_line='\\n', ignore_errors=true)"
    )


def run_duckdb_json(files: list[Path], conn) -> int:
    conn.execute(
        f"""CREATE TABLE events AS
            SELECT * FROM (
                SELECT TRY_CAST(ts AS TIMESTAMPTZ)::TIMESTAMP AS event_time, service, host,
                       upper(level) AS level, msg AS message, status, latency_ms, user_id,
                       http.method AS http_method, http.path AS http_path
                FROM read_json({_file_list(files)}, format='newline_delimited',
                               ignore_errors=true,
                               columns={{ts: 'VARCHAR', level: 'VARCHAR', service: 'VARCHAR',
                                        host: 'VARCHAR', msg: 'VARCHAR', status: 'BIGINT',
                                        latency_ms: 'DOUBLE', user_id: 'VARCHAR',
                                        http: 'STRUCT(method VARCHAR, path VARCHAR)'}}))
            WHERE event_time IS NOT NULL"""
    )
    return conn.execute("SELECT count(*) FROM events").fetchall()[0][0]


def run_duckdb_json_attrs(files: list[Path], conn) -> int:
    fields = "['$.ts', '$.level', '$.service', '$.host', '$.msg', '$.status', '$.latency_ms', '$.user_id', '$.http.method', '$.http.path']"
    conn.execute(JSON_ATTRS_DDL)
    conn.execute(
        f"""INSERT INTO events
            SELECT * FROM (
                SELECT TRY_CAST(f[1] AS TIMESTAMPTZ)::TIMESTAMP AS event_time, f[3] AS service,
                       f[4] AS host, upper(f[2]) AS level, f[5] AS message,
                       TRY_CAST(f[6] AS BIGINT) AS status, TRY_CAST(f[7] AS DOUBLE) AS latency_ms,
                       f[8] AS user_id, f[9] AS http_method, f[10] AS http_path, line AS attrs
                FROM (SELECT line, json_extract_string(line, {fields}) AS f
                      FROM {_whole_lines(files)} WHERE json_valid(line)))
            WHERE event_time IS NOT NULL"""
    )
    return conn.execute("SELECT count(*) FROM events").fetchall()[0][0]


def run_duckdb_text(files: list[Path], conn, attrs: bool = False) -> int:
    import re

    from loglens_pipeline.ingest.formats import PRESETS
    from loglens_pipeline.ingest.parsers import sql_literal

    pattern = PRESETS["nginx_combined"].pattern
    compiled = re.compile(pattern)
    by_index = {index: name for name, index in compiled.groupindex.items()}
    names = ["__match"] + [by_index[i] for i in range(1, compiled.groups + 1)]
    names_sql = ", ".join(sql_literal(n) for n in names)
    groups = ", ".join(f"{sql_literal(n)}, nullif(m.{n}, '')" for n in compiled.groupindex)
    attrs_sql = f", json_object({groups})::VARCHAR AS attrs" if attrs else ""
    if attrs:
        conn.execute(NGINX_ATTRS_DDL)
    conn.execute(
        f"""{"INSERT INTO events" if attrs else "CREATE TABLE events AS"}
            SELECT * FROM (
                SELECT try_strptime(m.time_local, '{CLF_TIME}')::TIMESTAMP AS event_time,
                       m.remote_addr, m.method, m.path, m.request,
                       TRY_CAST(m.status AS INTEGER) AS status,
                       TRY_CAST(m.body_bytes_sent AS BIGINT) AS body_bytes_sent,
                       m.http_referer, m.http_user_agent{attrs_sql}
                FROM (SELECT regexp_extract(line, {sql_literal("(" + pattern + ")")},
                                            [{names_sql}]) AS m
                      FROM {_whole_lines(files)}))
            WHERE event_time IS NOT NULL"""
    )
    return conn.execute("SELECT count(*) FROM events").fetchall()[0][0]


def run_duckdb_split(files: list[Path], conn) -> int:
    # `ip - user [time] "request" status bytes "referer" "agent"` split on the double quotes.
    conn.execute(
        f"""CREATE TABLE events AS
            SELECT * FROM (
                SELECT try_strptime(split_part(split_part(p[1], '[', 2), ']', 1), '{CLF_TIME}')
                           ::TIMESTAMP AS event_time,
                       split_part(p[1], ' ', 1) AS remote_addr,
                       split_part(p[2], ' ', 1) AS method,
                       split_part(p[2], ' ', 2) AS path,
                       p[2] AS request,
                       TRY_CAST(split_part(trim(p[3]), ' ', 1) AS INTEGER) AS status,
                       TRY_CAST(split_part(trim(p[3]), ' ', 2) AS BIGINT) AS body_bytes_sent,
                       p[4] AS http_referer, p[6] AS http_user_agent
                FROM (SELECT string_split(line, '"') AS p FROM {_whole_lines(files)}))
            WHERE event_time IS NOT NULL AND status IS NOT NULL"""
    )
    return conn.execute("SELECT count(*) FROM events").fetchall()[0][0]


REFERENCES = {
    ("json", "python"): run_python_json,
    ("text", "python"): run_python_text,
    ("json", "duckdb"): run_duckdb_json,
    ("text", "duckdb"): run_duckdb_text,
    ("text", "duckdb_split"): run_duckdb_split,
    ("json", "duckdb_attrs"): run_duckdb_json_attrs,
    ("text", "duckdb_attrs"): partial(run_duckdb_text, attrs=True),
}


def measure_child(root: str, fmt: str, impl: str, target: str) -> tuple[int, float, int]:
    """In a fresh process: one ingestion of a format's files into `target` -> rows, s, peak RSS."""
    import pandas  # noqa: F401  # imported by every Dagster run worker; not part of the timing

    from loglens_pipeline.ingest.discovery import source_files

    project = _bench.load_project(Path(root))
    target_path = Path(target)
    if impl == "loglens":
        rows, started = run_loglens(project, SOURCES[fmt], target_path)
    else:
        files = source_files(project.logs_dir, project.config.source(SOURCES[fmt]))
        run = REFERENCES[(fmt, impl)]
        with _connect(target_path, project) as conn:
            started = time.perf_counter()
            rows = run(files, conn)
    seconds = time.perf_counter() - started
    return rows, seconds, _bench.peak_rss_bytes()


def measure(root: Path, fmt: str, impl: str, lines: int, size: int) -> Measurement:
    target = root / "bench-warehouse" / f"{fmt}-{impl}.duckdb"
    shutil.rmtree(target.parent, ignore_errors=True)
    rows, seconds, peak = _bench.in_child(measure_child, str(root), fmt, impl, str(target))
    shutil.rmtree(target.parent, ignore_errors=True)
    return Measurement(lines, rows, size, seconds, peak)


def generate(root: Path, lines: int, seed: int):
    """Seeded sample logs of about `lines` JSON lines (and as many nginx lines) under `root`."""
    from loglens_pipeline.samples.generator import generate_sample_logs

    project = _bench.write_project(root)
    started = time.perf_counter()
    manifest = generate_sample_logs(
        project.logs_dir,
        start=START,
        hours=HOURS,
        lines_per_hour=max(1, lines // HOURS),
        seed=seed,
        malformed_fraction=0.005,
        out_of_order_fraction=0.01,
    )
    print(
        f"generated {manifest.total_lines:,} lines ({_bench.human_bytes(sum(f.size_bytes for f in manifest.files))}) "
        f"in {time.perf_counter() - started:.1f} s (seed {seed}, 0.5% malformed, 1% out of order)"
    )
    return project, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines",
        type=_bench.count,
        default=1_000_000,
        help="JSON lines; the nginx log gets as many (1M, 5M, 200k, ...)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="json,text")
    parser.add_argument(
        "--impls",
        default="loglens,python,duckdb,duckdb_split,duckdb_attrs",
        help="implementations to measure (loglens is needed for the ratios)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    args = parser.parse_args()
    if args.smoke:
        args.lines, args.runs = 10_000, 1

    from loglens_pipeline.ingest.discovery import source_files

    _bench.header("ingest throughput: LogLens vs reference implementations")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="loglens-bench-ingest-"))
    try:
        if (root / "data" / "logs").exists():
            project = _bench.load_project(root)
            manifest = None
            print(f"reusing the logs under {project.logs_dir}")
        else:
            project, manifest = generate(root, args.lines, args.seed)
        wanted = args.impls.split(",")
        print(
            f"runs: {args.runs} per implementation, each in a fresh process; "
            f"warehouse: memory_limit {project.config.warehouse.memory_limit}, "
            f"threads {project.config.warehouse.threads}"
        )
        print()
        print(
            f"{'format':6} {'impl':12} {'lines':>10} {'MB':>8} {'rows':>10} "
            f"{'lines/s min / median / max':>34} {'MB/s median':>11} {'peak RSS MiB':>12}"
        )
        medians: dict[tuple[str, str], float] = {}
        for fmt in args.formats.split(","):
            source = project.config.source(SOURCES[fmt])
            files = source_files(project.logs_dir, source)
            size = sum(p.stat().st_size for p in files)
            if manifest is not None:
                lines = sum(f.total_lines for f in manifest.files if f.source == source.name)
            else:
                lines = sum(_count_lines(p) for p in files)
            for impl in IMPLEMENTATIONS[fmt]:
                if impl not in wanted:
                    continue
                runs = [measure(root, fmt, impl, lines, size) for _ in range(args.runs)]
                rates = [r.lines_per_s for r in runs]
                medians[(fmt, impl)] = _bench.median(rates)
                print(
                    f"{fmt:6} {impl:12} {lines:>10,} {size / 1e6:>8.1f} {runs[0].rows:>10,} "
                    f"{_bench.min_med_max(rates):>34} "
                    f"{_bench.median([r.mb_per_s for r in runs]):>11.1f} "
                    f"{max(r.peak_rss for r in runs) / _bench.MIB:>12.0f}",
                    flush=True,
                )
        print()
        for fmt in args.formats.split(","):
            ours = medians.get((fmt, "loglens"))
            if ours is None:
                continue
            for impl in IMPLEMENTATIONS[fmt][1:]:
                if (fmt, impl) in medians:
                    ratio = ours / medians[(fmt, impl)]
                    print(f"ratio {fmt} loglens/{impl}: {ratio:.2f} (median lines/s)")
        _bench.footer()
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _count_lines(path: Path) -> int:
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return lines


if __name__ == "__main__":
    main()
