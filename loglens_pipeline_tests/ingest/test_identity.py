"""File identity: a log file keeps its id while it grows or is renamed, and only then."""

from __future__ import annotations

from pathlib import Path

from loglens_pipeline.ingest.identity import FINGERPRINT_BYTES, stat_file

FIRST = b'{"ts":"2026-11-25T13:00:00Z","msg":"service started"}\n'
SECOND = b'{"ts":"2026-11-25T13:00:01Z","msg":"second"}\n'


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_identity_is_stable_while_the_file_grows_by_appends(tmp_path: Path) -> None:
    path = write(tmp_path / "app.log", FIRST)
    before = stat_file(path, "app")
    assert before is not None
    assert before.size == len(FIRST)

    append(path, SECOND)
    append(path, b"x" * 5000 + b"\n")
    after = stat_file(path, "app")

    assert after is not None
    assert after.file_id == before.file_id
    assert after.size == len(FIRST) + len(SECOND) + 5001
    assert after.inode == before.inode


def test_renamed_file_keeps_its_identity(tmp_path: Path) -> None:
    path = write(tmp_path / "app.log", FIRST + b"more\n")
    before = stat_file(path, "app")
    rotated = path.rename(tmp_path / "app.log.1")

    after = stat_file(rotated, "app")

    assert before is not None and after is not None
    assert after.file_id == before.file_id
    assert after.path == rotated
    assert stat_file(path, "app") is None


def test_file_rewritten_with_a_different_first_line_gets_a_new_identity(tmp_path: Path) -> None:
    path = write(tmp_path / "app.log", FIRST + b"more\n")
    before = stat_file(path, "app")

    write(path, b'{"ts":"2026-11-26T08:00:00Z","msg":"service started"}\nmore\n')
    after = stat_file(path, "app")

    assert before is not None and after is not None
    assert after.file_id != before.file_id


def test_file_with_only_a_partial_first_line_has_no_identity_until_its_newline(
    tmp_path: Path,
) -> None:
    partial = FIRST[:-1]
    assert len(partial) < FINGERPRINT_BYTES
    path = write(tmp_path / "app.log", partial)
    assert stat_file(path, "app") is None

    append(path, b"\n")
    state = stat_file(path, "app")

    assert state is not None
    assert state.size == len(FIRST)
    # The same complete first line in another file is the same identity.
    other = stat_file(write(tmp_path / "other.log", FIRST + b"later line\n"), "app")
    assert other is not None
    assert other.file_id == state.file_id


def test_empty_file_has_no_identity(tmp_path: Path) -> None:
    assert stat_file(write(tmp_path / "empty.log", b""), "app") is None


def test_first_line_longer_than_a_kib_still_gets_an_identity(tmp_path: Path) -> None:
    head = b"A" * (FINGERPRINT_BYTES + 200)
    path = write(tmp_path / "wide.log", head)  # no newline yet, but more than 1 KiB
    without_newline = stat_file(path, "app")
    assert without_newline is not None

    append(path, b"B" * 3000 + b"\nnext line\n")
    complete = stat_file(path, "app")

    assert complete is not None
    assert complete.file_id == without_newline.file_id


def test_first_line_of_exactly_a_kib_with_its_newline_gets_an_identity(tmp_path: Path) -> None:
    path = write(tmp_path / "edge.log", b"z" * (FINGERPRINT_BYTES - 1) + b"\n")
    state = stat_file(path, "app")
    assert state is not None
    append(path, b"tail\n")
    grown = stat_file(path, "app")
    assert grown is not None
    assert grown.file_id == state.file_id


def test_same_first_line_under_two_sources_gives_different_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "shared.log", FIRST)

    app = stat_file(path, "app")
    nginx = stat_file(path, "nginx")

    assert app is not None and nginx is not None
    assert app.file_id != nginx.file_id


def test_files_with_different_first_lines_have_different_ids(tmp_path: Path) -> None:
    one = stat_file(write(tmp_path / "one.log", b"first\n"), "app")
    two = stat_file(write(tmp_path / "two.log", b"second\n"), "app")
    assert one is not None and two is not None
    assert one.file_id != two.file_id


def test_vanished_file_has_no_state(tmp_path: Path) -> None:
    path = write(tmp_path / "gone.log", FIRST)
    path.unlink()
    assert stat_file(path, "app") is None


def test_directory_has_no_state(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    assert stat_file(tmp_path / "dir.log", "app") is None
