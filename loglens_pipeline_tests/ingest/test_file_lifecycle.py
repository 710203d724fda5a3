"""Files as they really behave: rotation, copytruncate, truncation, inode reuse, compression,
partial lines. Every line written must be ingested exactly once."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loglens_pipeline.ingest.discovery import source_files
from loglens_pipeline.ingest.identity import stat_file
from loglens_pipeline.ingest.ingestor import ingest_files
from loglens_pipeline.warehouse.connection import connect
from loglens_pipeline.warehouse.schema import ensure_raw_schema
from loglens_pipeline_tests.conftest import write_project

NOW = datetime(2026, 11, 26, 12)


def rotating_source(data: dict) -> None:
    data["ingest"].update(chunk_bytes=4096, max_line_bytes=1024, flush_partial_after_seconds=60)
    data["sources"].append(
        {
            "name": "rot",
            "glob": "rot/app.log*",
            "format": "json",
            "timestamp": {"field": "ts", "format": "iso8601"},
            "mapping": {"message": "msg"},
        }
    )


@pytest.fixture
def rot(tmp_path):
    project = write_project(tmp_path, rotating_source)
    (project.logs_dir / "rot").mkdir(parents=True)
    return project


class Writer:
    """Writes uniquely numbered lines and remembers them (the model of what must be read)."""

    def __init__(self, folder: Path):
        self.folder, self.n, self.written = folder, 0, []

    def line(self) -> bytes:
        self.n += 1
        self.written.append(f"line {self.n}")
        ts = (datetime(2026, 11, 20) + timedelta(seconds=self.n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (json.dumps({"ts": ts, "msg": f"line {self.n}"}) + "\n").encode()

    def append(self, name: str = "app.log", count: int = 1) -> None:
        with (self.folder / name).open("ab") as handle:
            for _ in range(count):
                handle.write(self.line())


def ingest(project, now: datetime = NOW):
    source = project.config.source("rot")
    with connect(project.warehouse_path, project.config.warehouse) as conn:
        ensure_raw_schema(conn)
        work = [
            (source, state)
            for path in source_files(project.logs_dir, source)
            if (state := stat_file(path, source.name)) is not None
        ]
        return ingest_files(conn, work, project.config.ingest, ingested_at=now)


def messages(project) -> list[str]:
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        rows = conn.execute("SELECT message FROM raw.events WHERE source = 'rot'").fetchall()
    return sorted(r[0] for r in rows)


def assert_exactly_once(project, writer: Writer) -> None:
    assert messages(project) == sorted(writer.written)
    with connect(project.warehouse_path, project.config.warehouse, read_only=True) as conn:
        rows = conn.execute(
            "SELECT lines, events, quarantined FROM raw.file_offsets WHERE source = 'rot'"
        ).fetchall()
    assert all(lines == events + quarantined for lines, events, quarantined in rows)


def test_rotation_by_rename_loses_nothing_even_when_the_old_file_still_grows(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=20)
    ingest(rot)
    os.rename(w.folder / "app.log", w.folder / "app.log.1")
    w.append("app.log.1", count=3)  # the writer still had the old file open
    w.append(count=5)  # the new app.log
    report = ingest(rot)
    assert sorted(f.status for f in report.files) == ["continues", "new"]
    assert_exactly_once(rot, w)


def test_copytruncate_reads_the_copy_to_its_end_and_the_new_content_from_zero(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=20)
    ingest(rot)
    w.append(count=4)  # written after the last ingestion, before the copy
    shutil.copyfile(w.folder / "app.log", w.folder / "app.log.1")
    with (w.folder / "app.log").open("r+b") as handle:
        handle.truncate(0)
    w.append(count=6)
    ingest(rot)
    assert_exactly_once(rot, w)


def test_truncated_and_rewritten_with_the_same_first_line_is_a_new_generation(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=10)
    first_line = (w.folder / "app.log").read_bytes().split(b"\n")[0] + b"\n"
    ingest(rot)
    (w.folder / "app.log").write_bytes(first_line)  # "line 1" written a second time
    w.written.append("line 1")
    w.append(count=30)  # longer than before: size alone cannot tell
    report = ingest(rot)
    assert [f.status for f in report.files] == ["rewritten"]
    assert report.files[0].file_id.endswith(".1")
    assert_exactly_once(rot, w)


def test_inode_reuse_with_different_content_is_a_new_file(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=10)
    ingest(rot)
    inode = (w.folder / "app.log").stat().st_ino
    with (w.folder / "app.log").open("r+b") as handle:  # same inode, new content
        handle.truncate(0)
    w.append(count=3)
    assert (w.folder / "app.log").stat().st_ino == inode
    assert [f.status for f in ingest(rot).files] == ["new"]
    assert_exactly_once(rot, w)


def test_a_compressed_rotation_is_not_read_again_and_its_unread_tail_is(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=50)
    ingest(rot)
    w.append(count=7)  # not yet ingested when the file is rotated and compressed
    with (
        (w.folder / "app.log").open("rb") as src,
        gzip.open(w.folder / "app.log.1.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    (w.folder / "app.log").unlink()
    report = ingest(rot)
    assert report.total("lines") == 7
    os.utime(w.folder / "app.log.1.gz")  # touched
    os.rename(w.folder / "app.log.1.gz", w.folder / "app.log.2.gz")  # and renamed
    assert ingest(rot).total("lines") == 0
    assert_exactly_once(rot, w)


def test_a_compressed_file_is_read_whole_once_with_its_unterminated_last_line(rot):
    w = Writer(rot.logs_dir / "rot")
    content = b"".join(w.line() for _ in range(200)).rstrip(b"\n")
    with gzip.open(w.folder / "app.log.9.gz", "wb") as handle:
        handle.write(content)
    assert ingest(rot).total("lines") == 200
    assert ingest(rot).total("lines") == 0
    assert_exactly_once(rot, w)


def test_an_identical_copy_is_recognised_and_not_ingested_twice(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=10)
    ingest(rot)
    shutil.copyfile(w.folder / "app.log", w.folder / "app.log.bak")
    assert ingest(rot).total("lines") == 0
    assert_exactly_once(rot, w)


def test_two_files_starting_alike_in_one_run_are_read_once_in_turn(rot):
    """The second file continues the first one's committed offset, though it was opened (and
    its reading begun) while the first one was still being committed."""
    w = Writer(rot.logs_dir / "rot")
    w.append(count=20)
    shutil.copyfile(w.folder / "app.log", w.folder / "app.log.bak")
    w.append("app.log.bak", count=5)
    report = ingest(rot)
    assert [(f.path.rsplit("/", 1)[1], f.status, f.lines) for f in report.files] == [
        ("app.log", "new", 20),
        ("app.log.bak", "continues", 5),
    ]
    assert_exactly_once(rot, w)


def test_many_files_in_one_run_each_read_once(rot):
    w = Writer(rot.logs_dir / "rot")
    for i in range(6):
        w.append(f"app.log.{i}", count=300 + i)  # several 4 KiB chunks each
    report = ingest(rot)
    assert [f.lines for f in report.files] == [300 + i for i in range(6)]
    assert all(f.chunks > 1 for f in report.files)
    assert ingest(rot).total("lines") == 0
    assert_exactly_once(rot, w)


def test_a_partial_last_line_waits_then_is_flushed_when_the_file_is_idle(rot):
    w = Writer(rot.logs_dir / "rot")
    w.append(count=2)
    with (w.folder / "app.log").open("ab") as handle:
        handle.write(w.line().rstrip(b"\n"))
    mtime = (w.folder / "app.log").stat().st_mtime
    modified = datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)
    assert ingest(rot, now=modified + timedelta(seconds=5)).total("lines") == 2
    assert ingest(rot, now=modified + timedelta(seconds=61)).total("lines") == 1
    assert_exactly_once(rot, w)


def test_crlf_bom_empty_and_binary_files(rot):
    folder = rot.logs_dir / "rot"
    (folder / "app.log.empty").write_bytes(b"")
    (folder / "app.log.bin").write_bytes(b"\x00\x01\xff\xfe binary \x7f\n")
    (folder / "app.log.crlf").write_bytes(
        b'\xef\xbb\xbf{"ts": "2026-11-20T00:00:01Z", "msg": "bom"}\r\n'
        b'{"ts": "2026-11-20T00:00:02Z", "msg": "crlf"}\r\n'
    )
    report = ingest(rot)
    assert report.total("lines") == 3
    with connect(rot.warehouse_path, rot.config.warehouse, read_only=True) as conn:
        rows = conn.execute("SELECT reason FROM raw.quarantine ORDER BY reason").fetchall()
    assert messages(rot) == ["bom", "crlf"], "the BOM is skipped, CR stripped"
    assert [r[0] for r in rows] == ["invalid_utf8"], "the binary line is quarantined"


OPS = st.lists(
    st.sampled_from(
        [
            "append",
            "append_many",
            "partial",
            "ingest",
            "rotate",
            "copytruncate",
            "gzip_rotate",
            "append_old",
        ]
    ),
    min_size=1,
    max_size=25,
)


def rotate(folder: Path, kind: str, n: int) -> None:
    """Rotate `folder/app.log` to its `n`-th copy: `rotate` (rename), `copytruncate`, else gzip.

    The gzip copy is written under a name outside the glob and renamed in, so no ingestion
    sees half a compressed file.
    """
    live = folder / "app.log"
    if kind == "rotate":
        os.rename(live, folder / f"app.log.{n}")
    elif kind == "copytruncate":
        shutil.copyfile(live, folder / f"app.log.{n}")
        with live.open("r+b") as handle:
            handle.truncate(0)
    else:
        staging = folder.parent / f"staging-{n}.gz"
        with live.open("rb") as src, gzip.open(staging, "wb") as dst:
            shutil.copyfileobj(src, dst)
        live.unlink()
        os.rename(staging, folder / f"app.log.{n}.gz")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_any_sequence_of_file_operations_ingests_every_line_exactly_once(tmp_path_factory, ops):
    """The interpreter idea of Vector's file-source tests: random operations, one model."""
    project = write_project(tmp_path_factory.mktemp("ops"), rotating_source)
    folder = project.logs_dir / "rot"
    folder.mkdir(parents=True)
    w = Writer(folder)
    w.append()
    rotated = 0
    partial = False
    for op in ops:
        live = folder / "app.log"
        if op in ("append", "append_many") and partial:
            with live.open("ab") as handle:  # the writer finishes its line first
                handle.write(b"\n")
            partial = False
        if op == "append":
            w.append()
        elif op == "append_many":
            w.append(count=120)
        elif op == "partial" and not partial:
            with live.open("ab") as handle:
                handle.write(w.line().rstrip(b"\n"))
            partial = True
        elif op == "ingest":
            ingest(project)
        elif op == "append_old" and rotated and (folder / f"app.log.{rotated}").exists():
            w.append(f"app.log.{rotated}")
        elif op in ("rotate", "copytruncate", "gzip_rotate"):
            if partial:  # a writer finishes its line before rotating
                with live.open("ab") as handle:
                    handle.write(b"\n")
                partial = False
            rotated += 1
            rotate(folder, op, rotated)
            w.append()  # the new live file gets its first line
    if partial:
        with (folder / "app.log").open("ab") as handle:
            handle.write(b"\n")
    ingest(project)
    ingest(project)
    assert_exactly_once(project, w)


@pytest.mark.slow
def test_rotating_truncating_and_appending_while_ingestion_runs(rot):
    """A writer thread appends, rotates, copytruncates and compresses while ingestion loops."""
    folder = rot.logs_dir / "rot"
    w = Writer(folder)
    w.append()
    rng = random.Random(7)

    def write() -> None:
        rotated = 0
        for step in range(400):
            w.append(count=rng.randint(1, 40))
            if step % 60 == 59:
                rotated += 1
                rotate(folder, rng.choice(["rotate", "copytruncate", "gzip"]), rotated)
                w.append()
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    runs = 0
    while writer.is_alive():
        ingest(rot)
        runs += 1
    writer.join()
    ingest(rot)
    assert runs >= 3, "ingestion must have run while the files were changing"
    assert_exactly_once(rot, w)
