"""Reading files as batches of complete lines: exact offsets, terminators, bad lines, chunking."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loglens_pipeline.config.models import IngestConfig
from loglens_pipeline.ingest.lines import ARROW_BATCH_ROWS, LineBatch, read_batches, split_lines

RAW_KEEP = 1024  # documented: a quarantined long line keeps its first KiB


def rows(table: pa.Table) -> list[tuple]:
    """(byte_offset, line, pre_reason, raw_line, raw_bytes) for every row, in order."""
    return [
        (r["byte_offset"], r["line"], r["pre_reason"], r["raw_line"], r["raw_bytes"])
        for r in table.to_pylist()
    ]


def read_all(path: Path, start: int = 0, **kwargs) -> list[LineBatch]:
    kwargs.setdefault("chunk_bytes", 64 * 1024)
    kwargs.setdefault("max_line_bytes", 16 * 1024)
    return list(read_batches(path, start, **kwargs))


def all_rows(batches: list[LineBatch]) -> list[tuple]:
    return [row for batch in batches for row in rows(batch.table)]


def duckdb_lines(table: pa.Table) -> list[tuple[int, str | None]]:
    with duckdb.connect() as conn:
        conn.register("t", table)
        return conn.execute("SELECT byte_offset, line FROM t ORDER BY byte_offset").fetchall()


# --- terminators, offsets, blank lines ------------------------------------------------------


def test_lf_and_crlf_terminators_are_stripped_and_offsets_are_file_positions() -> None:
    data = b"first\r\nsecond\nthird line\r\n"
    table = split_lines(data, 1000, 1024)

    assert [(r[0], r[1], r[2]) for r in rows(table)] == [
        (1000, "first", None),
        (1007, "second", None),
        (1014, "third line", None),
    ]
    assert table.column("line").type == pa.string_view()
    assert table.column("byte_offset").type == pa.int64()


def test_read_batches_gives_lf_and_crlf_lines_at_their_file_offsets(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(b"alpha\nbeta\r\n\r\ngamma\n")

    batches = read_all(path)

    assert [(b.start_offset, b.end_offset) for b in batches] == [(0, 20)]
    assert [(r[0], r[1]) for r in all_rows(batches)] == [
        (0, "alpha"),
        (6, "beta"),
        (12, ""),
        (14, "gamma"),
    ]


def test_blank_lines_are_kept_as_empty_strings() -> None:
    table = split_lines(b"a\n\n\r\n   \nb\n", 0, 1024)

    assert [(r[0], r[1], r[2]) for r in rows(table)] == [
        (0, "a", None),
        (2, "", None),
        (3, "", None),
        (5, "   ", None),
        (9, "b", None),
    ]
    assert duckdb_lines(table) == [(0, "a"), (2, ""), (3, ""), (5, "   "), (9, "b")]


def test_only_a_carriage_return_right_before_the_newline_is_a_terminator() -> None:
    table = split_lines(b"a\rb\r\r\n\r\rx\n", 0, 1024)
    assert [r[1] for r in rows(table)] == ["a\rb\r", "\r\rx"]


def test_reading_from_a_later_offset_keeps_absolute_offsets(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\nthree\n")

    batches = read_all(path, start=4)

    assert [(b.start_offset, b.end_offset) for b in batches] == [(4, 14)]
    assert [(r[0], r[1]) for r in all_rows(batches)] == [(4, "two"), (8, "three")]


# --- lines DuckDB cannot take as text -------------------------------------------------------


def test_invalid_utf8_lines_are_null_with_their_exact_bytes() -> None:
    data = (
        b"ok\n"
        b"caf\xe9 latin-1\n"  # latin-1 e-acute
        b"\xc3\x28\r\n"  # bad continuation byte, CRLF
        b"euro \xe2\x82\n"  # truncated 3-byte sequence
        b"\xed\xa0\x80\n"  # encoded UTF-16 surrogate
        b"caf\xc3\xa9 \xe2\x82\xac\n"  # valid: cafe-acute euro
    )
    table = split_lines(data, 0, 1024)

    assert rows(table) == [
        (0, "ok", None, None, None),
        (3, None, "invalid_utf8", "caf\ufffd latin-1", b"caf\xe9 latin-1"),
        (16, None, "invalid_utf8", "\ufffd(", b"\xc3\x28"),
        (20, None, "invalid_utf8", "euro \ufffd", b"euro \xe2\x82"),
        (28, None, "invalid_utf8", "\ufffd\ufffd\ufffd", b"\xed\xa0\x80"),
        (32, "café €", None, None, None),
    ]


def test_nul_byte_lines_are_null_with_their_exact_bytes() -> None:
    table = split_lines(b"a\x00b\n\x00\r\nfine\n", 0, 1024)

    assert rows(table) == [
        (0, None, "nul_byte", "a\ufffdb", b"a\x00b"),
        (4, None, "nul_byte", "\ufffd", b"\x00"),
        (7, "fine", None, None, None),
    ]


def test_bad_lines_are_null_in_duckdb_and_good_lines_around_them_are_intact() -> None:
    table = split_lines(b"before\n\xff\xfe\nmid\x00dle\nafter\n", 0, 1024)
    assert duckdb_lines(table) == [(0, "before"), (7, None), (10, None), (18, "after")]


def test_lines_over_max_line_bytes_are_quarantined_with_their_first_kib() -> None:
    long_line = bytes(range(97, 123)) * 100  # 2600 bytes, a..z repeated
    data = b"x" * 1024 + b"\n" + long_line + b"\r\n" + b"y" * 1025 + b"\nend\n"
    table = split_lines(data, 0, 1024)

    assert (
        rows(table)
        == [
            (0, "x" * 1024, None, None, None),  # exactly max_line_bytes is fine
            (1025, None, "line_too_long", long_line[:RAW_KEEP].decode(), None),
            (3627, None, "line_too_long", "y" * RAW_KEEP, None),
            (4653, "end", None, None, None),
        ]
    )


def test_too_long_takes_precedence_over_invalid_utf8_and_nul() -> None:
    table = split_lines(b"\xff" * 2000 + b"\n" + b"\x00" * 1500 + b"\n", 0, 1024)
    assert [(r[0], r[2], r[4]) for r in rows(table)] == [
        (0, "line_too_long", None),
        (2001, "line_too_long", None),
    ]


def test_line_longer_than_a_chunk_is_one_quarantined_row_and_reading_continues(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.log"
    huge = b"0123456789" * 1000  # 10,000 bytes, more than a 4096-byte chunk
    path.write_bytes(b"short\n" + huge + b"\nafter 1\nafter 2\n")

    batches = read_all(path, chunk_bytes=4096, max_line_bytes=1024)

    assert [(b.start_offset, b.end_offset, b.lines) for b in batches] == [
        (0, 6, 1),
        (6, 10007, 1),
        (10007, 10023, 2),
    ]
    assert all_rows(batches) == [
        (0, "short", None, None, None),
        (6, None, "line_too_long", huge[:RAW_KEEP].decode(), None),
        (10007, "after 1", None, None, None),
        (10015, "after 2", None, None, None),
    ]
    assert duckdb_lines(batches[1].table) == [(6, None)]


def test_line_longer_than_a_chunk_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    path.write_bytes(b"ok\n" + b"z" * 9000)

    first = read_all(path, chunk_bytes=4096, max_line_bytes=1024)
    assert [(b.start_offset, b.end_offset) for b in first] == [(0, 3)]

    with path.open("ab") as handle:
        handle.write(b"z" * 1000 + b"\nnext\n")
    later = read_all(path, start=3, chunk_bytes=4096, max_line_bytes=1024)

    assert [(b.start_offset, b.end_offset) for b in later] == [(3, 10004), (10004, 10009)]
    assert all_rows(later) == [
        (3, None, "line_too_long", "z" * RAW_KEEP, None),
        (10004, "next", None, None, None),
    ]


# --- partial lines and limits ---------------------------------------------------------------


def test_partial_last_line_is_left_until_its_newline_arrives(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"first\nsecond\nthi")

    batches = read_all(path)
    assert [(b.start_offset, b.end_offset) for b in batches] == [(0, 13)]
    assert [r[1] for r in all_rows(batches)] == ["first", "second"]

    with path.open("ab") as handle:
        handle.write(b"rd\r\nfour")
    later = read_all(path, start=batches[-1].end_offset)

    assert [(b.start_offset, b.end_offset) for b in later] == [(13, 20)]
    assert all_rows(later) == [(13, "third", None, None, None)]


def test_file_without_any_complete_line_gives_no_batch(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"no newline yet")
    assert read_all(path) == []
    path.write_bytes(b"")
    assert read_all(path) == []


def test_reading_at_the_end_of_the_file_gives_no_batch(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\n")
    assert read_all(path, start=8) == []


def test_end_limit_stops_reading_and_the_rest_waits_for_a_later_read(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"ab\ncd\nef\ngh\n")

    limited = read_all(path, end_limit=7)  # cuts "ef" after its first byte
    assert [(b.start_offset, b.end_offset) for b in limited] == [(0, 6)]
    assert [r[1] for r in all_rows(limited)] == ["ab", "cd"]

    exact = read_all(path, end_limit=9)
    assert [(b.start_offset, b.end_offset) for b in exact] == [(0, 9)]

    rest = read_all(path, start=6, end_limit=12)
    assert [(r[0], r[1]) for r in all_rows(rest)] == [(6, "ef"), (9, "gh")]


def test_end_limit_bounds_every_chunk(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    line = b"x" * 99 + b"\n"
    path.write_bytes(line * 200)  # 20,000 bytes

    batches = read_all(path, chunk_bytes=4096, max_line_bytes=1024, end_limit=10_050)

    assert batches[-1].end_offset == 10_000
    assert all(b.end_offset - b.start_offset <= 4096 for b in batches)
    assert sum(b.lines for b in batches) == 100


def test_end_limit_holds_for_a_line_longer_than_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    path.write_bytes(b"a" * 5000 + b"\nnext\n")  # the newline lies after end_limit

    batches = read_all(path, chunk_bytes=4096, max_line_bytes=1024, end_limit=4500)

    assert all(b.end_offset <= 4500 for b in batches)


def test_a_line_of_exactly_max_line_bytes_with_crlf_fits_the_largest_allowed_setting(
    tmp_path: Path,
) -> None:
    # The config allows max_line_bytes up to chunk_bytes - 2, so such a line and its CRLF fit.
    assert IngestConfig(chunk_bytes=4096, max_line_bytes=4094).max_line_bytes == 4094
    with pytest.raises(ValueError, match="max_line_bytes must be at most chunk_bytes - 2"):
        IngestConfig(chunk_bytes=4096, max_line_bytes=4095)
    path = tmp_path / "edge.log"
    path.write_bytes(b"a" * 4094 + b"\r\nnext\n")

    batches = read_all(path, chunk_bytes=4096, max_line_bytes=4094)

    assert all_rows(batches) == [
        (0, "a" * 4094, None, None, None),
        (4096, "next", None, None, None),
    ]


def test_too_long_line_raw_text_is_the_same_whether_or_not_it_fits_a_chunk(
    tmp_path: Path,
) -> None:
    line = b"nul\x00" + b"p" * 5000
    within = split_lines(line + b"\n", 0, 1024)  # too long, but inside one chunk
    path = tmp_path / "nul.log"
    path.write_bytes(line + b"\n")
    beyond = read_all(path, chunk_bytes=4096, max_line_bytes=1024)  # longer than a chunk

    assert rows(within)[0][3] == "nul\ufffd" + "p" * 1020
    assert all_rows(beyond)[0][3] == rows(within)[0][3]


def test_blank_lines_are_valid_arrow_empty_strings() -> None:
    table = split_lines(b"x\n\n\nyy\n\n", 0, 1024)
    column = table.column("line")

    column.validate(full=True)  # Arrow: inline views are zero-padded
    assert column.equals(pa.chunked_array([pa.array(["x", "", "", "yy", ""], pa.string_view())]))
    counts = {d["values"]: d["counts"] for d in column.combine_chunks().value_counts().to_pylist()}
    assert counts == {"x": 1, "": 3, "yy": 1}


# --- string views through DuckDB ------------------------------------------------------------


def test_short_inline_and_long_lines_read_back_identically_through_duckdb() -> None:
    lines = [
        "",
        "a",
        "twelve bytes",  # exactly 12 bytes: the longest inline string
        "thirteen byte",  # 13 bytes: the shortest string stored out of line
        "ééééé",  # 10 bytes
        "éééééé",  # 12 bytes
        "ééééééé",  # 14 bytes, crossing the inline limit mid-character
        "€€€€",  # 12 bytes
        "😀😀😀😀",  # 16 bytes
        "x" * 500,
        "abcd" * 3,
        "abcd" * 3 + "e",
        "ok",
    ]
    data = b"".join(line.encode() + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))
    table = split_lines(data, 0, 1024)

    assert table.column("line").to_pylist() == lines
    with duckdb.connect() as conn:
        conn.register("t", table)
        assert [
            r[0] for r in conn.execute("SELECT line FROM t ORDER BY byte_offset").fetchall()
        ] == lines
        assert conn.execute(
            "SELECT list(octet_length(encode(line)) ORDER BY byte_offset) FROM t"
        ).fetchone()[0] == [len(line.encode()) for line in lines]
        assert conn.execute("SELECT count(*) FROM t WHERE line = 'twelve bytes'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM t WHERE line = 'abcdabcdabcd'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM t WHERE line LIKE 'abcd%'").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM t WHERE line = ''").fetchone() == (1,)


def test_many_short_lines_span_several_record_batches_and_duckdb_sees_all(tmp_path: Path) -> None:
    lines = [f"{i % 1000}" if i % 7 else "" for i in range(2 * ARROW_BATCH_ROWS + 5_000)]
    lines[12_345] = "a long line among short ones, well past twelve bytes"
    lines[ARROW_BATCH_ROWS] = "another long line, the first of the second record batch"
    path = tmp_path / "short.log"
    path.write_bytes("".join(line + "\n" for line in lines).encode())

    batches = read_all(path, chunk_bytes=4 << 20, max_line_bytes=1024)

    assert len(batches) == 1
    table = batches[0].table
    assert [b.num_rows for b in table.to_batches()] == [ARROW_BATCH_ROWS, ARROW_BATCH_ROWS, 5_000]
    assert [line for _, line in duckdb_lines(table)] == lines
    with duckdb.connect() as conn:
        conn.register("t", table)
        assert conn.execute("SELECT count(*) FROM t WHERE line = ''").fetchone() == (
            lines.count(""),
        )


# --- the key property: batches are an exact, contiguous split of the file --------------------


def expected_split(data: bytes, max_line_bytes: int) -> tuple[list[tuple], int]:
    """An independent, plain-Python reading of complete lines and the offset after the last."""
    expected, offset = [], 0
    for segment in data.split(b"\n")[:-1]:  # the last piece has no newline yet
        content = segment[:-1] if segment.endswith(b"\r") else segment
        if len(content) > max_line_bytes:
            text = content[:RAW_KEEP].decode("utf-8", errors="replace")
            expected.append((offset, None, "line_too_long", text, None))
        else:
            try:
                line = content.decode("utf-8")
            except UnicodeDecodeError:
                text = content.decode("utf-8", errors="replace").replace("\0", "\ufffd")
                expected.append((offset, None, "invalid_utf8", text, content))
            else:
                if "\0" in line:
                    text = line.replace("\0", "\ufffd")
                    expected.append((offset, None, "nul_byte", text, content))
                else:
                    expected.append((offset, line, None, None, None))
        offset += len(segment) + 1
    return expected, offset


@st.composite
def log_files(draw: st.DrawFn) -> tuple[bytes, int, int]:
    chunk_bytes = draw(st.integers(4096, 70_000))
    # max_line_bytes is at most chunk_bytes - 2, as the config requires.
    max_line_bytes = draw(st.integers(1024, chunk_bytes - 2))
    text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=60).map(
        str.encode
    )
    printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(
        str.encode
    )
    binary = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))
    long = st.builds(
        lambda char, size: (char * size)[:size],
        st.sampled_from(["x", "é", "€", "😀"]).map(str.encode),
        st.integers(max_line_bytes - 4, 2 * chunk_bytes + 10),
    )
    block = st.builds(  # many ordinary lines, so files span several chunks
        lambda count, width, end: (b"m" * width + end) * count + b"b",
        st.integers(1, 200),
        st.integers(0, 200),
        st.sampled_from([b"\n", b"\r\n"]),
    )
    line = st.one_of(text, printable, printable, binary, long, block)
    ending = st.sampled_from([b"\n", b"\r\n"])
    pieces = draw(st.lists(st.tuples(line, ending), max_size=40))
    partial = draw(st.one_of(st.just(b""), binary, long))
    return b"".join(body + end for body, end in pieces) + partial, chunk_bytes, max_line_bytes


def check_batches(batches: list[LineBatch], start: int, chunk_bytes: int) -> None:
    """Batches are contiguous and bounded by the chunk size, except one-row long lines."""
    offset = start
    for batch in batches:
        assert batch.start_offset == offset
        assert batch.end_offset > batch.start_offset
        if batch.end_offset - batch.start_offset > chunk_bytes:
            assert rows(batch.table) == [
                (batch.start_offset, None, "line_too_long", rows(batch.table)[0][3], None)
            ]
        offset = batch.end_offset


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(log_files(), st.sampled_from([None, 1, 3, 7]))
def test_batches_are_an_exact_contiguous_split_of_any_file(
    tmp_path_factory: pytest.TempPathFactory, log: tuple[bytes, int, int], align: int | None
) -> None:
    data, chunk_bytes, max_line_bytes = log
    path = tmp_path_factory.mktemp("prop") / "random.log"
    path.write_bytes(data)
    expected, end = expected_split(data, max_line_bytes)

    batches = read_all(
        path, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes, align_rows=align
    )

    assert all_rows(batches) == expected
    check_batches(batches, 0, chunk_bytes)
    assert (batches[-1].end_offset if batches else 0) == end
    if batches:
        whole = pa.concat_tables(batch.table for batch in batches)
        assert duckdb_lines(whole) == [(row[0], row[1]) for row in expected]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(log_files(), st.floats(0, 1))
def test_reading_a_file_while_it_is_written_gives_the_same_lines(
    tmp_path_factory: pytest.TempPathFactory, log: tuple[bytes, int, int], cut: float
) -> None:
    data, chunk_bytes, max_line_bytes = log
    split_at = int(len(data) * cut)
    path = tmp_path_factory.mktemp("grow") / "growing.log"
    path.write_bytes(data[:split_at])

    first = read_all(path, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes)
    resume = first[-1].end_offset if first else 0
    with path.open("ab") as handle:
        handle.write(data[split_at:])
    second = read_all(path, start=resume, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes)

    expected, end = expected_split(data, max_line_bytes)
    assert all_rows(first + second) == expected
    check_batches(first + second, 0, chunk_bytes)
    assert ((first + second)[-1].end_offset if first + second else 0) == end


def test_aligned_batches_hold_whole_row_groups_except_the_last(tmp_path: Path) -> None:
    path = tmp_path / "aligned.log"
    path.write_bytes(b"".join(b"line %05d\n" % i for i in range(1000)))  # 11 bytes a line

    batches = read_all(path, chunk_bytes=1100, align_rows=30)  # 100 lines fit a chunk

    assert [batch.lines for batch in batches] == [90] * 11 + [10]
    assert all_rows(batches) == all_rows(read_all(path, chunk_bytes=1100))
    assert batches[-1].end_offset == 11_000
