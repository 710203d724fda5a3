"""The e2e tests' GraphQL queries are valid against the installed dagster-graphql schema.

Dagster renames GraphQL fields between releases; this catches it in seconds, without starting
the webserver.
"""

from __future__ import annotations

import pytest
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from loglens_pipeline_tests.e2e import processes
from loglens_pipeline_tests.e2e import test_live_pipeline as live

QUERIES = {
    "readiness": processes.READINESS_QUERY,
    "runs": live.RUNS_QUERY,
    "all_runs": live.ALL_RUNS_QUERY,
    "run_errors": live.RUN_ERRORS_QUERY,
    "sensor": live.SENSOR_QUERY,
    "asset": live.ASSET_QUERY,
    "launch_backfill": live.LAUNCH_BACKFILL,
    "backfill": live.BACKFILL_QUERY,
    "partitions": live.PARTITIONS_QUERY,
    "check": live.CHECK_QUERY,
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_matches_installed_schema(name: str) -> None:
    errors = validate(create_schema().graphql_schema, parse(QUERIES[name]))
    assert not errors, [e.message for e in errors]
