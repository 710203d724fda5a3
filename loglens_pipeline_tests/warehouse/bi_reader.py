"""Child process for the reader/writer test: queries the reader copy the way BI tools do
(SQLAlchemy + duckdb_engine, read-only) in a loop until a stop file appears."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

CONSISTENT = text(
    """SELECT (SELECT coalesce(sum(lines), 0) FROM raw.file_offsets),
              (SELECT count(*) FROM raw.events) + (SELECT count(*) FROM raw.quarantine),
              (SELECT count(*) FROM analytics.metric_points),
              (SELECT count(*) FROM analytics.metric_catalog)"""
)


def main(reader: Path, stop: Path, report: Path) -> None:
    queries, errors, inconsistent, seen = 0, [], 0, set()
    while not stop.exists():
        if not reader.exists():
            time.sleep(0.05)
            continue
        # A fresh engine per round: each BI query opens a new connection, as dashboards do.
        engine = create_engine(
            f"duckdb:///{reader}", connect_args={"read_only": True}, poolclass=None
        )
        try:
            with engine.connect() as conn:
                offsets_lines, rows, _points, _catalog = conn.execute(CONSISTENT).one()
                queries += 1
                inconsistent += offsets_lines != rows
                seen.add(offsets_lines)
        except Exception as exc:  # every failure is reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            engine.dispose()
        time.sleep(0.02)
    report.write_text(
        json.dumps(
            {
                "queries": queries,
                "errors": errors[:5],
                "error_count": len(errors),
                "inconsistent": inconsistent,
                "distinct_states": len(seen),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
