"""Replay: parse quarantined lines again with the current source config, and move the lines
that now parse into `raw.events`, in one transaction, without duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from loglens_pipeline.config.models import SourceConfig
from loglens_pipeline.ingest.parsers import field_column_specs, field_columns, parse_sql
from loglens_pipeline.warehouse.schema import ensure_field_columns

# Lines whose raw text was not kept whole cannot be parsed again.
NOT_REPLAYABLE = ("line_too_long", "invalid_utf8", "nul_byte")


@dataclass(frozen=True)
class ReplayResult:
    source: str
    examined: int
    moved: int


def replay_quarantine(
    conn: duckdb.DuckDBPyConnection, source: SourceConfig, ingested_at: datetime
) -> ReplayResult:
    """Move every quarantined line of `source` that the current parser accepts into events."""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE replay_input AS
            SELECT row_number() OVER () AS key, file_id, file_path, byte_offset, raw_line, line_count
            FROM raw.quarantine
            WHERE source = ? AND reason NOT IN {NOT_REPLAYABLE} AND raw_line IS NOT NULL""",
        [source.name],
    )
    examined = conn.execute("SELECT count(*) FROM replay_input").fetchall()[0][0]
    # The parser reads `batch`; the row key stands in for the byte offset, mapped back below.
    conn.execute(
        """CREATE OR REPLACE TEMP VIEW batch AS
           SELECT key AS byte_offset, raw_line AS line, NULL::VARCHAR AS pre_reason,
                  NULL::VARCHAR AS raw_line, NULL::BLOB AS raw_bytes FROM replay_input"""
    )
    conn.execute(f"CREATE OR REPLACE TEMP TABLE replay_parsed AS {parse_sql(source)}")
    columns = field_columns(source)
    ensure_field_columns(conn, field_column_specs(source))
    typed = "".join(f', p."{column}"' for column in columns)
    conn.execute("BEGIN TRANSACTION")
    try:
        moved = conn.execute(
            f"""INSERT INTO raw.events BY NAME
                SELECT p.event_time, ? AS source, ? AS tenant, p.service, p.host, p.level,
                       p.message, p.attrs, i.file_id, i.file_path, i.byte_offset,
                       ? AS ingested_at, i.line_count{typed}
                FROM replay_parsed p JOIN replay_input i ON i.key = p.byte_offset
                WHERE p.reason IS NULL""",
            [source.name, source.tenant, ingested_at],
        ).fetchall()[0][0]
        conn.execute(
            """CREATE OR REPLACE TEMP TABLE replay_moved AS
               SELECT i.file_id, i.byte_offset FROM replay_parsed p
               JOIN replay_input i ON i.key = p.byte_offset WHERE p.reason IS NULL"""
        )
        conn.execute(
            """DELETE FROM raw.quarantine q USING replay_moved m
               WHERE q.file_id = m.file_id AND q.byte_offset = m.byte_offset"""
        )
        conn.execute(
            """UPDATE raw.file_offsets f SET events = f.events + m.n, quarantined = f.quarantined - m.n
               FROM (SELECT file_id, count(*) AS n FROM replay_moved GROUP BY file_id) m
               WHERE f.file_id = m.file_id"""
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DROP VIEW IF EXISTS batch")
    return ReplayResult(source.name, examined, moved)
