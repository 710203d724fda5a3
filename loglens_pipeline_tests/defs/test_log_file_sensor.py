"""Drop files, tick `log_file_sensor` through Dagster's API, run what it requests, query the warehouse."""

from __future__ import annotations

import json
from dataclasses import replace

import dagster as dg
import pytest

from loglens_pipeline.definitions import build_definitions
from loglens_pipeline_tests.conftest import query, write_project


def app_line(i: int, minute: int = 0) -> str:
    return (
        json.dumps(
            {
                "ts": f"2026-11-20T10:{minute:02d}:{i % 60:02d}.000Z",
                "level": "INFO",
                "service": "cart",
                "msg": f"request {i}",
                "status": 200,
            }
        )
        + "\n"
    )


def write_app_file(project, name: str, lines: int, start: int = 0) -> None:
    path = project.logs_dir / "app" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("".join(app_line(i) for i in range(start, start + lines)))


def tick(defs: dg.Definitions, instance, cursor: str | None):
    sensor = defs.resolve_sensor_def("log_file_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return sensor.evaluate_tick(context)


def run(defs, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("ingest_job").execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )


def requested_files(request: dg.RunRequest) -> list[str]:
    files = request.run_config["ops"]["raw__events"]["config"]["files"]
    return sorted(f["path"].rsplit("/", 1)[-1] for f in files)


def test_no_files_means_no_run(project, instance):
    project.logs_dir.mkdir(parents=True, exist_ok=True)
    result = tick(build_definitions(project), instance, None)
    assert result.run_requests == [] and "no new bytes" in result.skip_message


def test_a_missing_watched_folder_is_named_in_the_skip_reason(project, instance):
    assert not project.logs_dir.exists()
    result = tick(build_definitions(project), instance, None)
    assert result.run_requests == []
    assert result.skip_message.startswith(f"the watched folder {project.logs_dir} does not exist")


def test_new_file_then_unchanged_then_grown(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "a.jsonl", 10)
    first = tick(defs, instance, None)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert requested_files(request) == ["a.jsonl"]
    assert request.tags["loglens/source"] == "app"
    assert not project.warehouse_path.exists(), "the sensor must never open the warehouse"

    assert run(defs, instance, request).success
    assert query(project, "SELECT count(*) FROM raw.events") == [(10,)]

    unchanged = tick(defs, instance, first.cursor)
    assert unchanged.run_requests == []

    write_app_file(project, "a.jsonl", 5, start=10)
    grown = tick(defs, instance, first.cursor)
    assert len(grown.run_requests) == 1
    assert grown.run_requests[0].run_key != request.run_key
    assert run(defs, instance, grown.run_requests[0]).success
    assert query(project, "SELECT count(*), count(DISTINCT byte_offset) FROM raw.events") == [
        (15, 15)
    ]


def test_files_of_two_sources_are_two_runs_tagged_by_source(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "a.jsonl", 4)
    write_app_file(project, "b.jsonl", 2)
    nginx = project.logs_dir / "nginx" / "access.log"
    nginx.parent.mkdir(parents=True)
    nginx.write_text(
        '10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "GET /cart HTTP/1.1" 200 512 "-" "curl/8"\n' * 3
    )

    requests = tick(defs, instance, None).run_requests

    assert [(r.tags["loglens/source"], r.tags["loglens/files"]) for r in requests] == [
        ("app", "2"),
        ("nginx", "1"),
    ]
    assert requested_files(requests[0]) == ["a.jsonl", "b.jsonl"]
    assert requested_files(requests[1]) == ["access.log"]
    assert len({r.run_key for r in requests}) == 2
    for request in requests:
        assert run(defs, instance, request).success
    assert query(project, "SELECT source, count(*) FROM raw.events GROUP BY 1 ORDER BY 1") == [
        ("app", 6),
        ("nginx", 3),
    ]


def test_same_files_same_run_key(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "a.jsonl", 3)
    keys = {tick(defs, instance, None).run_requests[0].run_key for _ in range(2)}
    assert len(keys) == 1, "a re-tick over the same bytes must not request new work"


def test_file_without_a_complete_first_line_waits(project, instance):
    defs = build_definitions(project)
    path = project.logs_dir / "app" / "slow.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"ts": "2026-11-20T10:00:00Z", "msg": "still wri')
    assert tick(defs, instance, None).run_requests == []
    path.write_text(path.read_text() + 'ting"}\n')
    assert requested_files(tick(defs, instance, None).run_requests[0]) == ["slow.jsonl"]


@pytest.fixture
def capped_project(tmp_path):
    return write_project(tmp_path, lambda d: d["ingest"].update(max_files_per_run=3))


def test_many_files_are_batched_and_capped_per_tick(capped_project, instance):
    project = capped_project
    defs = build_definitions(project)
    for i in range(5):
        write_app_file(project, f"f{i}.jsonl", 4, start=i * 10)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        result = tick(defs, instance, cursor)
        cursor = result.cursor or cursor
        for request in result.run_requests:
            seen += requested_files(request)
            assert run(defs, instance, request).success
    assert sorted(seen) == [f"f{i}.jsonl" for i in range(5)]
    assert query(project, "SELECT count(*), count(DISTINCT file_id) FROM raw.events") == [(20, 5)]
    assert tick(defs, instance, cursor).run_requests == []


def test_cursor_forgets_deleted_files(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "old.jsonl", 2)
    cursor = tick(defs, instance, None).cursor
    (project.logs_dir / "app" / "old.jsonl").unlink()
    write_app_file(project, "new.jsonl", 2, start=50)
    result = tick(defs, instance, cursor)
    assert len(json.loads(result.cursor)) == 1


def test_ingestion_run_records_metadata(project, instance):
    defs = build_definitions(project)
    write_app_file(project, "a.jsonl", 7)
    with (project.logs_dir / "app" / "a.jsonl").open("a") as handle:
        handle.write("not json\n")
    result = run(defs, instance, tick(defs, instance, None).run_requests[0])
    events = result.get_asset_materialization_events()
    [event] = [e for e in events if e.asset_key == dg.AssetKey(["raw", "events"])]
    hours = [e.partition for e in events if e.asset_key == dg.AssetKey(["raw", "event_hours"])]
    assert hours == ["2026-11-20-10:00"], "each closed hour written into is recorded"
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (meta["files"], meta["lines"], meta["events"], meta["quarantined"]) == (1, 8, 7, 1)
    assert meta["first_event_hour"] == meta["last_event_hour"] == "2026-11-20T10:00:00"
    assert meta["lines_per_second"] > 0
    [app_row] = [row for row in meta["per_source"].splitlines() if row.startswith("| app |")]
    cells = [cell.strip() for cell in app_row.strip("|").split("|")]
    size = (project.logs_dir / "app" / "a.jsonl").stat().st_size
    assert cells[:5] == ["app", f"{size:,}", "8", "7", "1"], app_row
    assert float(cells[5].replace(",", "")) > 0, "lines/s per source"
    assert "analytics.quarantine_by_reason" in meta["quarantine"]
    assert meta["late_hours"] == "2026-11-20-10:00", "an hour closed long ago is reported late"
    record = instance.get_latest_materialization_event(dg.AssetKey(["raw", "events"]))
    assert record is not None and record.run_id == result.run_id


@pytest.mark.slow
def test_thousands_of_files_are_requested_in_capped_batches(project, instance):
    project = replace(
        project,
        config=project.config.model_copy(
            update={"ingest": project.config.ingest.model_copy(update={"max_files_per_run": 500})}
        ),
    )
    folder = project.logs_dir / "app"
    folder.mkdir(parents=True)
    for i in range(3000):
        (folder / f"f{i:05d}.jsonl").write_text(app_line(i))
    defs = build_definitions(project)
    cursor, ticks, requested = None, 0, []
    while True:
        result = tick(defs, instance, cursor)
        if not result.run_requests:
            break
        ticks += 1
        [request] = result.run_requests
        requested += requested_files(request)
        assert len(requested_files(request)) <= 500
        cursor = result.cursor
    assert ticks == 6 and len(set(requested)) == 3000
    assert len(json.loads(cursor)) == 3000


def test_an_idle_file_gets_one_more_run_only_for_an_unterminated_last_line(project):
    from datetime import UTC, datetime, timedelta

    from loglens_pipeline.defs.ingest.sensors import change_mark
    from loglens_pipeline.ingest.identity import stat_file

    write_app_file(project, "done.jsonl", 2)
    path = project.logs_dir / "app" / "done.jsonl"
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    settings = project.config.ingest
    assert not change_mark(stat_file(path, "app"), settings, later).endswith("+idle")
    with path.open("a") as handle:
        handle.write('{"ts": "2026-11-20T10:00:00Z", "msg": "unterminated"}')
    assert change_mark(stat_file(path, "app"), settings, later).endswith("+idle")
