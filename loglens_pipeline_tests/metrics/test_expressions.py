import duckdb
import pytest

from loglens_pipeline.metrics.expressions import (
    ALLOWED_FUNCTIONS,
    ExpressionError,
    compile_expression,
    referenced_fields,
)

CONTEXT = "metric 'error_rate' filter"

FIELDS = {
    ("level",): '"level"',
    ("service",): '"service"',
    ("message",): '"message"',
    ("ts",): '"ts"',
    ("status",): "TRY_CAST(json_extract_string(attrs, '$.status') AS BIGINT)",
    ("latency_ms",): "TRY_CAST(json_extract_string(attrs, '$.latency_ms') AS DOUBLE)",
    ("http", "status"): "TRY_CAST(json_extract_string(attrs, '$.http.status') AS BIGINT)",
    ("http", "method"): "json_extract_string(attrs, '$.http.method')",
}

ROWS = [
    (
        1,
        "ERROR",
        "checkout",
        "upstream timeout after 30s",
        '{"status": 504, "latency_ms": 30000, "http": {"status": 504, "method": "POST"}}',
        "2024-05-01 10:15:00",
    ),
    (
        2,
        "INFO",
        "cart",
        "item added",
        '{"status": 200, "latency_ms": 120, "http": {"status": 200, "method": "GET"}}',
        "2024-05-01 11:00:00",
    ),
    (
        3,
        "ERROR",
        "search",
        "Timeout talking to index",
        '{"status": 500, "latency_ms": 2500, "http": {"status": 500, "method": "GET"}}',
        "2024-05-01 23:59:00",
    ),
    (4, "WARN", "checkout", "slow response", '{"latency_ms": 1800}', "2024-05-02 00:30:00"),
    (
        5,
        "DEBUG",
        None,
        "it's 50% done",
        '{"status": 404, "http": {"status": 404, "method": "DELETE"}}',
        "2024-05-02 12:05:00",
    ),
    (6, "ERROR", "cart", "café down", "{}", "2024-05-02 13:45:00"),
]


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (id INTEGER, level VARCHAR, service VARCHAR, message VARCHAR, "
        "attrs VARCHAR, ts TIMESTAMP)"
    )
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    yield con
    con.close()


def _matching_ids(con, sql: str) -> set[int]:
    return {row[0] for row in con.execute(f"SELECT id FROM events WHERE {sql}").fetchall()}


VALID_FILTERS = [
    ("level = 'ERROR' and status >= 500", {1, 3}),
    ("service in ('checkout', 'cart') and message like '%timeout%'", {1}),
    ("http.status between 500 and 599", {1, 3}),
    ("lower(message) like '%timeout%'", {1, 3}),
    ("message ilike '%TIMEOUT%'", {1, 3}),
    ("level == 'ERROR'", {1, 3, 6}),
    ("level <> 'ERROR' and level != 'DEBUG'", {2, 4}),
    ("message not like '%timeout%'", {2, 3, 4, 5, 6}),
    ("service is null", {5}),
    ("message is not null and not (level = 'INFO')", {1, 3, 4, 5, 6}),
    ("http.method in ('GET', 'POST') or status = 404", {1, 2, 3, 5}),
    ("service not in ('cart', 'checkout')", {3}),
    ("level = 'ERROR' or level = 'WARN' and service = 'cart'", {1, 3, 6}),
    ("latency_ms / 1000 > 2", {1, 3}),
    ("latency_ms % 1000 = 0", {1}),
    ("-latency_ms < -2000", {1, 3}),
    ("status + 1 = 201 or status * 2 = 1000 or status - 4 = 400", {2, 3, 5}),
    ("coalesce(service, 'unknown') = 'unknown'", {5}),
    ("regexp_matches(message, '^[a-z]+ (timeout|response)')", {1, 4}),
    ("regexp_matches(message, 'TIMEOUT', 'i')", {1, 3}),
    ("regexp_matches(message, 'café')", {6}),
    ("message ~ 'added$'", {2}),
    (r"regexp_extract(message, 'after (\d+)s', 1) = '30'", {1}),
    ("starts_with(message, 'slow') or ends_with(message, 'added')", {2, 4}),
    ("contains(message, '%')", {5}),
    ("message like '%50!%%' escape '!'", {5}),
    ("message = 'it''s 50% done'", {5}),
    (
        "case when status >= 500 then 'server' when status >= 400 then 'client' "
        "else 'ok' end = 'client'",
        {5},
    ),
    ("cast(http.status as varchar) like '5%'", {1, 3}),
    ("cast(latency_ms as bigint) = 120", {2}),
    ("try_cast(level as integer) is null and level = 'WARN'", {4}),
    ("abs(status - 502) <= 2", {1, 3}),
    ("round(latency_ms / 1000, 1) = 2.5", {3}),
    ("floor(latency_ms / 1000) = 1 or ceil(latency_ms / 1000) = 1", {2, 4}),
    # DuckDB's least/greatest skip NULLs, so rows without a status match too.
    ("least(status, 500) = 500 and greatest(status, 504) = 504", {1, 3, 4, 6}),
    ("nullif(level, 'ERROR') is null", {1, 3, 6}),
    ("trim(upper(substr(service, 1, 4))) = 'CHEC'", {1, 4}),
    ("substring(message, 1, 4) = 'item'", {2}),
    ("length(message) <> strlen(message)", {6}),
    ("hour(ts) >= 23 or minute(ts) = 30", {3, 4}),
    ("\"level\" = 'WARN'", {4}),
    ("http.status = 404 -- client errors only", {5}),
    ("level = 'ERROR' /* keep */ and http.method = 'GET'", {3}),
    ("(level = 'INFO')", {2}),
    ("true", {1, 2, 3, 4, 5, 6}),
    # Quotes and semicolons inside a string literal are just text.
    ("message = 'x''); DROP TABLE events; --'", set()),
]


@pytest.mark.parametrize(("text", "expected"), VALID_FILTERS, ids=[t for t, _ in VALID_FILTERS])
def test_valid_filters_select_the_expected_rows(con, text, expected):
    sql = compile_expression(text, FIELDS.get, context=CONTEXT)
    assert _matching_ids(con, sql) == expected


VALID_VALUES = [
    ("latency_ms / 1000", [30.0, 0.12, 2.5, 1.8, None, None]),
    (
        "coalesce(service, 'anonymous')",
        ["checkout", "cart", "search", "checkout", "anonymous", "cart"],
    ),
    ("case when http.status >= 500 then 1 else 0 end", [1, 0, 1, 0, 0, 0]),
    ("http.status", [504, 200, 500, None, 404, None]),
    (r"regexp_extract(message, '(\d+)', 1)", ["30", "", "", "", "50", ""]),
]


@pytest.mark.parametrize(("text", "expected"), VALID_VALUES, ids=[t for t, _ in VALID_VALUES])
def test_valid_values_compute_the_expected_column(con, text, expected):
    sql = compile_expression(text, FIELDS.get, context="metric 'latency' value", kind="value")
    rows = con.execute(f"SELECT {sql} FROM events ORDER BY id").fetchall()
    assert [value for (value,) in rows] == expected


HOSTILE = [
    # Statements, semicolons and subqueries.
    ("1=1; DROP TABLE raw.events", ";"),
    ("level = 'ERROR';", ";"),
    ("(select 1) = 1", "SELECT"),
    ("status in (select status from raw.events)", "SELECT"),
    ("exists(select 1 from raw.events)", "SELECT"),
    ("select * from raw.events", "SELECT"),
    ("level = 'a' union select 'b'", "UNION"),
    ("attach '/tmp/x.db'", "attach"),
    ("pragma version", "pragma"),
    ("set threads = 1", "set"),
    ("install httpfs", "install"),
    ("load httpfs", "load"),
    ("copy (select 1) to '/tmp/x.csv'", "copy"),
    ("create table t (a int)", "create"),
    ("drop table raw.events", "drop"),
    ("insert into raw.events values (1)", "insert"),
    ("update raw.events set level = 'x'", "update"),
    ("delete from raw.events", "delete"),
    ("call pragma_version()", "call"),
    # Table functions and functions outside the allow-list.
    ("read_text('/etc/passwd') is not null", "read_text"),
    ("read_csv('/etc/passwd') is not null", "read_csv"),
    ("\"read_csv\"('x') is null", "read_csv"),
    ("read_parquet('s3://bucket/x.parquet') is null", "read_parquet"),
    ("read_json('/tmp/x.json') is null", "read_json"),
    ("glob('/etc/*') is null", "glob"),
    ("getenv('HOME') = 'x'", "getenv"),
    ("current_setting('threads') > 0", "current_setting"),
    ("query('select 1') is null", "query"),
    ("query_table('raw.events') is null", "query_table"),
    ("json_execute_serialized_sql('x') is null", "json_execute_serialized_sql"),
    ("duckdb_settings() is null", "duckdb_settings"),
    ("pragma_version() is null", "pragma_version"),
    ("getvariable('x') = 1", "getvariable"),
    ("now() > ts", "now"),
    ("if(status > 1, 1, 0) = 1", "CASE"),
    # Aggregates, windows, lambdas and other non-scalar syntax.
    ("count(*) > 0", "count"),
    ("sum(status) > 1", "sum"),
    ("sum(status) over () > 1", "over"),
    ("list_transform([1], x -> x) is null", "list_transform"),
    ("$1 = 1", "$1"),
    ("? = 1", "?"),
    ("level = $name", "$name"),
    ("* = 1", "*"),
    ("raw.* is not null", "raw.*"),
    ("columns('lev.*') is not null", "columns"),
    ("level || 'x' = 'ERRORx'", "||"),
    ("level collate nocase = 'error'", "COLLATE"),
    ("message[1] = 'x'", "message[1]"),
    ("[1, 2] is not null", "[1, 2]"),
    ("message.lower() = 'x'", "lower"),
    ("interval 1 day > ts", "INTERVAL"),
    ("status between symmetric 1 and 2", "BETWEEN"),
    ("cast(status as json) is null", "JSON"),
    ("status in (200, level)", "level"),
    ("status is level", "IS"),
    # Fields: table-qualified names are just unknown field paths.
    ("unknown_field = 1", "unknown_field"),
    ("raw.events.level = 'x'", "raw.events.level"),
    # Regular expressions.
    ("regexp_matches(message, '(')", "("),
    ("regexp_matches(message, '(?<=a)b')", "(?<=a)b"),
    ("regexp_matches(message, level)", "level"),
    ("regexp_extract(message, 'a(b)', 2) = 'b'", "2"),
]


@pytest.mark.parametrize(("text", "offending"), HOSTILE, ids=[t for t, _ in HOSTILE])
def test_hostile_expressions_are_refused(text, offending):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, FIELDS.get, context=CONTEXT)
    error = info.value
    assert offending.lower() in error.offending.lower()
    assert error.offending in str(error)
    assert str(error).startswith(f"{CONTEXT}: ")
    assert error.context == CONTEXT
    assert error.expression == text
    assert "\n" not in str(error)


def test_hostile_expressions_are_refused_by_referenced_fields_too():
    with pytest.raises(ExpressionError, match="read_text"):
        referenced_fields("read_text('/etc/passwd') is not null")


def test_refused_function_message_names_function_and_allowed_list():
    text = "read_csv('/etc/passwd') is not null"
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, FIELDS.get, context=CONTEXT)
    message = str(info.value)
    assert message.startswith(f"{CONTEXT}: function read_csv is not allowed")
    assert f'in "{text}"' in message
    assert "allowed functions: " in message
    assert all(name in message for name in ALLOWED_FUNCTIONS)


@pytest.mark.parametrize("text", ["", "   ", "\n", "-- only a comment"])
def test_empty_expressions_are_refused(text):
    with pytest.raises(ExpressionError, match="empty"):
        compile_expression(text, FIELDS.get, context=CONTEXT)


@pytest.mark.parametrize("text", ["level = ", "level = 'unterminated", "status >= >= 1", "(a"])
def test_unparsable_expressions_are_refused(text):
    with pytest.raises(ExpressionError, match=r"could not be parsed: \S"):
        compile_expression(text, FIELDS.get, context=CONTEXT)


def test_too_deeply_nested_expression_is_refused_cleanly():
    text = "(" * 200 + "level = 'x'" + ")" * 200
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_expression(text, FIELDS.get, context=CONTEXT)


def test_non_string_expression_is_refused():
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(500, FIELDS.get, context=CONTEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["''", "1", "status", "latency_ms / 1000", "-status", "lower(message)", "null"]
)
def test_filter_must_be_a_condition(text):
    with pytest.raises(ExpressionError, match="a filter must be a condition"):
        compile_expression(text, FIELDS.get, context=CONTEXT)
    assert compile_expression(text, FIELDS.get, context="value", kind="value")


def test_comments_are_dropped_from_compiled_sql():
    sql = compile_expression("level = 'a' -- */ or 1=1", FIELDS.get, context=CONTEXT)
    assert sql == "(\"level\") = 'a'"


def test_resolver_sql_is_parenthesised_and_receives_paths():
    seen = []

    def resolve(path):
        seen.append(path)
        return "a + 1"

    sql = compile_expression("http.request.method * 2", resolve, context="c", kind="value")
    assert sql == "(a + 1) * 2"
    assert seen == [("http", "request", "method")]


def test_quoted_function_name_of_allowed_function_compiles_unquoted():
    sql = compile_expression('"strlen"(message) > 3', FIELDS.get, context=CONTEXT)
    assert sql == 'STRLEN(("message")) > 3'


def test_referenced_fields_returns_paths_of_any_depth():
    text = (
        "http.request.method = 'GET' and level = 'x' and \"my field\" is null "
        "and a.b.c.d.e.f = 1 and lower(message) like '%x%'"
    )
    assert referenced_fields(text) == {
        ("http", "request", "method"),
        ("level",),
        ("my field",),
        ("a", "b", "c", "d", "e", "f"),
        ("message",),
    }


def test_error_is_a_value_error_with_attributes_and_one_line_message():
    text = "level = 'x'\n  and unknown_field = 1"
    with pytest.raises(ValueError) as info:
        compile_expression(text, FIELDS.get, context=CONTEXT)
    error = info.value
    assert isinstance(error, ExpressionError)
    assert error.offending == "unknown_field"
    assert error.expression == text
    assert str(error) == (
        f"{CONTEXT}: unknown field unknown_field (at `unknown_field`) "
        "in \"level = 'x' and unknown_field = 1\""
    )


def test_invalid_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="kind"):
        compile_expression("level = 'x'", FIELDS.get, context=CONTEXT, kind="select")  # type: ignore[arg-type]
