"""Safe compilation of analyst-written metric expressions to DuckDB SQL.

Metric filters and values are written in YAML as small SQL expressions, e.g.
``level = 'ERROR' and status >= 500`` or ``coalesce(user_id, 'anonymous')``. They are parsed
with sqlglot (DuckDB dialect), checked node by node against an allow-list, and generated back
to DuckDB SQL with every field reference replaced by the SQL the caller's resolver returns.
Nothing is ever evaluated in Python.

Anything whose sqlglot node type is not explicitly allowed is refused: subqueries, statements,
table functions, functions outside ``ALLOWED_FUNCTIONS``, aggregates, window functions,
lambdas, ``*``, parameters, subscripts, list/struct literals, intervals and so on. Semicolons
are refused even when only one statement would result.

Notes on the accepted language:

* A field is an identifier or a dotted path of any depth (``http.request.method``); quoted
  identifiers are fields too. Names are passed to the resolver exactly as written, so
  ``raw.events.level`` is just the path ``("raw", "events", "level")``.
* SQL comments (``-- ...`` and ``/* ... */``) are accepted and dropped from the compiled SQL,
  so that annotations in YAML do not break anything and comment text never reaches DuckDB.
* Functions are recognised by the sqlglot node they parse to, so a few spellings that sqlglot
  folds into an allowed node are accepted as well: ``ifnull`` (coalesce), ``ceiling`` (ceil),
  ``ltrim``/``rtrim`` (trim), ``@x`` (abs) and ``x ~ 're'`` (regexp_matches).
* Regular-expression patterns must be string literals; they must compile with Python's ``re``
  and must not use constructs RE2 (DuckDB's engine) lacks: look-around, backreferences,
  atomic groups, conditionals and possessive quantifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError
from sqlglot.tokens import TokenType

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ExpressionError",
    "FieldResolver",
    "compile_expression",
    "referenced_fields",
]

FieldResolver = Callable[[tuple[str, ...]], str | None]

MAX_EXPRESSION_LENGTH = 10_000
_MAX_NODES = 5_000
_DIALECT = Dialect.get_or_raise("duckdb")

_BINARY = frozenset({"this", "expression"})
_UNARY = frozenset({"this"})

# Allowed node types mapped to the arguments they may carry. Any other argument being set
# (e.g. BETWEEN SYMMETRIC, CAST ... FORMAT, ROUND(..., truncate)) is refused as well.
_ALLOWED_NODES: dict[type[exp.Expr], frozenset[str]] = {
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: _UNARY,
    exp.Null: frozenset(),
    exp.Paren: _UNARY,
    exp.And: _BINARY,
    exp.Or: _BINARY,
    exp.Not: _UNARY,
    exp.EQ: _BINARY,
    exp.NEQ: _BINARY,
    exp.LT: _BINARY,
    exp.LTE: _BINARY,
    exp.GT: _BINARY,
    exp.GTE: _BINARY,
    exp.Is: frozenset({"this", "expression", "negate"}),
    exp.In: frozenset({"this", "expressions"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.ILike: frozenset({"this", "expression", "negate"}),
    exp.Escape: _BINARY,
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Add: _BINARY,
    exp.Sub: _BINARY,
    exp.Mul: _BINARY,
    exp.Div: _BINARY,
    exp.Mod: _BINARY,
    exp.Neg: _UNARY,
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.TryCast: frozenset({"this", "to", "safe"}),
    # Functions.
    exp.Lower: _UNARY,
    exp.Upper: _UNARY,
    exp.Length: _UNARY,
    exp.Coalesce: frozenset({"this", "expressions"}),
    exp.RegexpLike: frozenset({"this", "expression", "flag"}),
    exp.RegexpExtract: frozenset({"this", "expression", "group", "null_if_pos_overflow"}),
    exp.StartsWith: _BINARY,
    exp.EndsWith: _BINARY,
    exp.Contains: _BINARY,
    exp.Abs: _UNARY,
    exp.Round: frozenset({"this", "decimals"}),
    exp.Floor: _UNARY,
    exp.Ceil: _UNARY,
    exp.Least: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Greatest: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Nullif: _BINARY,
    exp.Trim: frozenset({"this", "expression", "position"}),
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Hour: _UNARY,
    exp.Minute: _UNARY,
    # Only for the names in _ANONYMOUS_FUNCTIONS (functions sqlglot has no node for).
    exp.Anonymous: frozenset({"this", "expressions"}),
}

# Function names sqlglot parses to exp.Anonymous, with their allowed argument counts.
_ANONYMOUS_FUNCTIONS: dict[str, tuple[int, int]] = {"strlen": (1, 1)}

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "abs",
        "ceil",
        "coalesce",
        "contains",
        "ends_with",
        "floor",
        "greatest",
        "hour",
        "least",
        "length",
        "lower",
        "minute",
        "nullif",
        "regexp_extract",
        "regexp_matches",
        "round",
        "starts_with",
        "strlen",
        "substr",
        "substring",
        "trim",
        "upper",
    }
)

_CAST_TYPES: dict[exp.DataType.Type, str] = {
    exp.DataType.Type.INT: "integer",
    exp.DataType.Type.BIGINT: "bigint",
    exp.DataType.Type.DOUBLE: "double",
    exp.DataType.Type.VARCHAR: "varchar",
    exp.DataType.Type.TEXT: "varchar",
    exp.DataType.Type.BOOLEAN: "boolean",
    exp.DataType.Type.TIMESTAMP: "timestamp",
    exp.DataType.Type.TIMESTAMPNTZ: "timestamp",
}
_CAST_TYPE_NAMES = ", ".join(sorted(set(_CAST_TYPES.values())))

_REGEX_FLAGS = frozenset("cimnps")

# Top-level nodes that can never be a condition; used to refuse e.g. ``status`` or
# ``latency_ms / 1000`` as a filter. Functions that may return a boolean (coalesce, case,
# nullif, least, ...) are given the benefit of the doubt.
_NOT_CONDITIONS: tuple[type[exp.Expr], ...] = (
    exp.Literal,
    exp.Null,
    exp.Column,
    exp.Dot,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Trim,
    exp.Substring,
    exp.Hour,
    exp.Minute,
    exp.RegexpExtract,
    exp.Anonymous,
)


_QUERY_TYPES = (exp.Query, exp.Values, exp.Exists, exp.From)
_STATEMENT_TYPES = (
    *(exp.DDL, exp.DML, exp.Command, exp.Attach, exp.Detach, exp.Pragma, exp.Set, exp.Install),
    *(exp.Drop, exp.Alter, exp.Use, exp.Describe, exp.Show, exp.Summarize, exp.Transaction),
    *(exp.Commit, exp.Rollback, exp.Analyze, exp.LoadData, exp.Export),
)
_DESCRIPTIONS: tuple[tuple[tuple[type[exp.Expr], ...], str], ...] = (
    ((exp.Placeholder, exp.Parameter, exp.SessionParameter), "parameters"),
    ((exp.Star, exp.Columns), "star (*) and COLUMNS(...)"),
    ((exp.Lambda,), "lambdas"),
    ((exp.Bracket,), "subscripts"),
    ((exp.Array, exp.Struct, exp.Map, exp.Tuple), "list, struct and map literals"),
    ((exp.Interval,), "intervals"),
    ((exp.PositionalColumn,), "positional column references"),
)


class ExpressionError(ValueError):
    """A metric expression that cannot be accepted.

    ``context`` names where the expression came from (e.g. ``metric 'error_rate' filter``),
    ``expression`` is the text as written and ``offending`` the part that was refused (the SQL
    of the refused node, ``;``, the unknown field, ...).
    """

    def __init__(
        self, reason: str, *, context: str, expression: str, offending: str, hint: str = ""
    ) -> None:
        self.reason = reason
        self.context = context
        self.expression = expression
        self.offending = offending
        where = f" (at `{_one_line(offending, 120)}`)" if offending else ""
        message = f'{context}: {reason}{where} in "{_one_line(expression, 300)}"'
        super().__init__(f"{message}; {hint}" if hint else message)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compile_expression(
    text: str,
    resolve_field: FieldResolver,
    *,
    context: str,
    kind: Literal["filter", "value"] = "filter",
) -> str:
    """Compile a metric filter or value expression to DuckDB SQL.

    The text is parsed as a single DuckDB expression and checked against the allow-list; every
    field reference is replaced by the parenthesised SQL ``resolve_field(path)`` returns (an
    unknown field, for which it returns None, is an error). With ``kind="filter"`` the
    expression must be a condition. Raises ExpressionError, naming ``context``, on refusal.
    """
    if kind not in ("filter", "value"):
        raise ValueError(f"kind must be 'filter' or 'value', not {kind!r}")
    checker = _Checker(text, context)
    tree, fields = checker.check()
    if kind == "filter":
        checker.require_condition(tree)

    for node, path in fields:
        sql = resolve_field(path)
        if not sql:
            raise checker.error(f"unknown field {'.'.join(path)}", _sql(node))
        if not isinstance(sql, str):
            raise TypeError(f"field resolver returned {type(sql).__name__} for {path}, not str")
        # exp.Var is emitted verbatim: the resolver's SQL is trusted, the user's text is not.
        tree = _replace(tree, node, exp.Paren(this=exp.Var(this=sql)))
    # A quoted function name would be emitted as an upper-cased quoted identifier; rebuild
    # the few allowed anonymous functions with a plain lower-case name.
    for node in list(tree.find_all(exp.Anonymous)):
        name = node.name.lower()
        tree = _replace(tree, node, exp.Anonymous(this=name, expressions=node.expressions))

    try:
        return tree.sql(dialect=_DIALECT, comments=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise checker.error(f"could not be compiled: {_one_line(str(error), 200)}", "") from None


def referenced_fields(text: str, *, context: str = "expression") -> set[tuple[str, ...]]:
    """Return the field paths an expression uses, e.g. ``{("level",), ("http", "status")}``.

    The expression is parsed and checked exactly as by compile_expression (so a refused
    expression raises ExpressionError), but fields are not resolved.
    """
    _, fields = _Checker(text, context).check()
    return {path for _, path in fields}


class _Checker:
    """Parses one expression and walks its tree, refusing anything not allow-listed."""

    def __init__(self, text: str, context: str) -> None:
        self.text = text
        self.context = context
        self.fields: list[tuple[exp.Expr, tuple[str, ...]]] = []

    def error(self, reason: str, offending: str, hint: str = "") -> ExpressionError:
        return ExpressionError(
            reason,
            context=self.context,
            expression=str(self.text),
            offending=offending,
            hint=hint,
        )

    def check(self) -> tuple[exp.Expr, list[tuple[exp.Expr, tuple[str, ...]]]]:
        tree = self._parse()
        try:
            self._visit(tree)
        except RecursionError:
            raise self.error("the expression is nested too deeply", "") from None
        return tree, self.fields

    def _parse(self) -> exp.Expr:
        text = self.text
        if not isinstance(text, str):
            raise self.error(f"an expression must be a string, not {type(text).__name__}", "")
        if not text.strip():
            raise self.error("the expression is empty", "")
        if len(text) > MAX_EXPRESSION_LENGTH:
            limit = MAX_EXPRESSION_LENGTH
            raise self.error(f"the expression is longer than {limit} characters", "")
        try:
            tokens = _DIALECT.tokenize(text)
            if any(token.token_type == TokenType.SEMICOLON for token in tokens):
                raise self.error("semicolons and multiple statements are not allowed", ";")
            statements = _DIALECT.parser(max_nodes=_MAX_NODES).parse(tokens, text)
        except ParseError as error:
            details = error.errors[0] if error.errors else {}
            reason = details.get("description") or str(error)
            raise self.error(
                f"the expression could not be parsed: {_one_line(reason, 150)}",
                details.get("highlight") or "",
            ) from None
        except TokenError as error:
            raise self.error(
                f"the expression could not be parsed: {_one_line(str(error), 150)}", ""
            ) from None
        except RecursionError:
            raise self.error("the expression is nested too deeply", "") from None
        if len(statements) != 1:
            raise self.error("semicolons and multiple statements are not allowed", ";")
        if statements[0] is None:
            raise self.error("the expression is empty", "")
        return statements[0]

    def require_condition(self, tree: exp.Expr) -> None:
        top = tree.unnest()
        not_condition = isinstance(top, _NOT_CONDITIONS) or (
            isinstance(top, exp.Cast) and top.to.this != exp.DataType.Type.BOOLEAN
        )
        if not_condition:
            raise self.error(
                "a filter must be a condition (a comparison, IN, LIKE, IS NULL, ...)",
                _sql(tree),
                hint="for a boolean field write e.g. `flag = true`",
            )

    def _visit(self, node: exp.Expr) -> None:
        path = _field_path(node)
        if path is not None:
            self.fields.append((node, path))
            return

        allowed_args = _ALLOWED_NODES.get(type(node))
        if allowed_args is None or (
            isinstance(node, exp.If) and not isinstance(node.parent, exp.Case)
        ):
            raise self._refusal(node)
        for key, value in node.args.items():
            if (
                key in allowed_args
                or value is None
                or value is False
                or (isinstance(value, list) and not value)
            ):
                continue
            if isinstance(value, exp.Expr) and type(value) not in _ALLOWED_NODES:
                raise self._refusal(value)
            raise self.error(f"unsupported syntax ({key})", _sql(node))
        self._check_node(node)

        for key, value in node.args.items():
            if isinstance(node, exp.Cast) and key == "to":
                continue
            if isinstance(node, exp.Anonymous) and key == "this":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Expr):
                    self._visit(child)

    def _check_node(self, node: exp.Expr) -> None:
        """Per-node rules that go beyond the node type and its argument names."""
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, (exp.Null, exp.Boolean)):
                raise self.error("IS is only allowed with NULL, TRUE or FALSE", _sql(node))
        elif isinstance(node, exp.In):
            values = node.expressions
            if not values:
                raise self.error("IN needs at least one value", _sql(node))
            for value in values:
                if not _is_literal(value):
                    raise self.error("IN only accepts a list of literal values", _sql(value))
        elif isinstance(node, exp.Escape):
            if not isinstance(node.this, (exp.Like, exp.ILike)):
                raise self._refusal(node)
            if not (_is_string(node.expression) and len(node.expression.this) == 1):
                raise self.error("ESCAPE needs a single-character string", _sql(node.expression))
        elif isinstance(node, exp.Cast):
            self._check_cast_type(node.to)
        elif isinstance(node, (exp.RegexpLike, exp.RegexpExtract)):
            self._check_regex(node)
        elif isinstance(node, exp.Anonymous):
            name = node.name.lower()
            arity = _ANONYMOUS_FUNCTIONS.get(name)
            if arity is None:
                raise self._refusal(node)
            low, high = arity
            if not low <= len(node.expressions) <= high:
                raise self.error(f"function {name} takes {low} argument(s)", _sql(node))

    def _check_cast_type(self, to: exp.Expr) -> None:
        ok = (
            isinstance(to, exp.DataType)
            and to.this in _CAST_TYPES
            and not to.expressions
            and not to.args.get("nested")
            and not to.args.get("kind")
            and not to.args.get("values")
            and not to.args.get("collate")
        )
        if not ok:
            raise self.error(f"casts are only allowed to {_CAST_TYPE_NAMES}", _sql(to))

    def _check_regex(self, node: exp.Expr) -> None:
        pattern = node.expression
        if not _is_string(pattern):
            raise self.error("a regular expression pattern must be a string literal", _sql(node))
        try:
            compiled = re.compile(pattern.this)
        except re.error as error:
            raise self.error(f"invalid regular expression ({error})", _sql(pattern)) from None
        except RecursionError:
            raise self.error("invalid regular expression (too complex)", _sql(pattern)) from None
        problem = _re2_problem(pattern.this)
        if problem:
            raise self.error(
                f"regular expression uses {problem}, which DuckDB (RE2) does not support",
                _sql(pattern),
            )
        flag = node.args.get("flag")
        if flag is not None and not (_is_string(flag) and set(flag.this) <= _REGEX_FLAGS):
            raise self.error(
                f"regexp options must be a string literal of {''.join(sorted(_REGEX_FLAGS))}",
                _sql(flag),
            )
        group = node.args.get("group")
        if group is not None:
            if not (isinstance(group, exp.Literal) and group.is_int):
                raise self.error("the regexp_extract group must be an integer", _sql(group))
            if int(group.this) > compiled.groups:
                raise self.error(f"the pattern has only {compiled.groups} group(s)", _sql(group))

    def _refusal(self, node: exp.Expr) -> ExpressionError:
        sql = _sql(node)
        if isinstance(node, exp.Window):
            return self.error("window functions (OVER) are not allowed", sql)
        if isinstance(node, _QUERY_TYPES):
            return self.error("subqueries and SELECT are not allowed", sql)
        if isinstance(node, _STATEMENT_TYPES):
            return self.error("statements are not allowed, only a single expression", sql)
        for types, description in _DESCRIPTIONS:
            if isinstance(node, types):
                return self.error(f"{description} are not allowed", sql)
        if isinstance(node, exp.Func):
            name = _function_name(node, sql)
            hint = f"allowed functions: {', '.join(sorted(ALLOWED_FUNCTIONS))}"
            if isinstance(node, exp.AggFunc):
                reason = f"aggregate function {name} is not allowed (aggregates are declared"
                return self.error(f"{reason} separately)", sql, hint)
            return self.error(f"function {name} is not allowed", sql, hint)
        if isinstance(node, exp.Dot):
            return self.error("member access and method calls are not allowed", sql)
        if isinstance(node, exp.Column) and node.is_star:
            return self.error("star (*) and COLUMNS(...) are not allowed", sql)
        return self.error("this syntax is not allowed", sql)


def _replace(tree: exp.Expr, node: exp.Expr, replacement: exp.Expr) -> exp.Expr:
    if node is tree:
        return replacement
    node.replace(replacement)
    return tree


def _field_path(node: exp.Expr) -> tuple[str, ...] | None:
    """The path of a plain field reference (Column, or a Dot chain on one), else None."""
    if isinstance(node, exp.Column):
        if node.args.get("join_mark") or node.args.get("shadow"):
            return None
        parts = node.parts
        if parts and all(isinstance(part, exp.Identifier) for part in parts):
            return tuple(part.name for part in parts)
        return None
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Identifier):
        base = _field_path(node.this)
        if base is not None:
            return (*base, node.expression.name)
    return None


def _is_string(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _is_literal(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and node.this.is_number
    return isinstance(node, (exp.Literal, exp.Boolean, exp.Null))


def _sql(node: exp.Expr) -> str:
    try:
        return node.sql(dialect=_DIALECT, comments=False, unsupported_level=ErrorLevel.IGNORE)
    except Exception:  # only describes a node that is being refused; never fail here
        return node.key


def _function_name(node: exp.Func, sql: str) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name
    if isinstance(node, exp.If):
        return "if"
    # Prefer the name DuckDB would see (list_transform rather than sqlglot's TRANSFORM).
    match = re.match(r'"?([A-Za-z_][\w$]*)"?\(', sql)
    return (match.group(1) if match else node.sql_name()).lower()


def _re2_problem(pattern: str) -> str | None:
    """Name a construct Python's ``re`` accepts but RE2 rejects, if the pattern uses one."""
    i, in_class, after_quantifier = 0, False, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if not in_class and pattern[i + 1 : i + 2].isdigit() and pattern[i + 1] != "0":
                return "backreferences"
            i, after_quantifier = i + 2, False
            continue
        if in_class:
            in_class = char != "]"
            i += 1
            continue
        if char == "[":
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a leading ']' is a literal
            in_class, after_quantifier = True, False
            continue
        if char == "(":
            for prefix, problem in _RE2_GROUPS:
                if pattern.startswith(prefix, i):
                    return problem
        if char == "+" and after_quantifier:
            return "possessive quantifiers"
        after_quantifier = char in "*+?}" and not (char == "?" and after_quantifier)
        i += 1
    return None


_RE2_GROUPS = (
    ("(?=", "look-around assertions"),
    ("(?!", "look-around assertions"),
    ("(?<=", "look-around assertions"),
    ("(?<!", "look-around assertions"),
    ("(?>", "atomic groups"),
    ("(?P=", "backreferences"),
    ("(?(", "conditional groups"),
)
