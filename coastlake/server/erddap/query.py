"""ERDDAP tabledap queries: parse `var1,var2&c>=v&orderBy("a")` and compile to DuckDB SQL.

Every value a client sends becomes a bound parameter; every name is checked against the
dataset's columns and quoted, so no part of a request is pasted into SQL as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from coastlake.server.erddap.columns import Column, DatasetColumns
from lake.errors import RequestError
from lake.times import parse_time

#: Longer operators first, so `>=` is not read as `>` followed by `=value`.
OPERATORS = (">=", "<=", "!=", "=~", "=", "<", ">")
CONSTRAINT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|=~|=|<|>)(.*)$", re.DOTALL)
FUNCTION = re.compile(r"^([A-Za-z]+)\((.*)\)$", re.DOTALL)
ORDER_FUNCTIONS = ("orderBy", "orderByDescending", "orderByMax", "orderByMin", "orderByLimit")
#: Pseudo-constraint of ours (not ERDDAP's): include values that failed QC.
INCLUDE_FLAGGED = "include_flagged"
SQL_OP = {">=": ">=", "<=": "<=", "!=": "!=", "=": "=", "<": "<", ">": ">"}
MAX_ORDER_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Constraint:
    column: Column
    op: str
    value: Any  # float, str, datetime or None (NaN)


@dataclass(slots=True)
class TabledapQuery:
    """A parsed request: selected columns, constraints, ordering and distinct()."""

    columns: list[Column]
    constraints: list[Constraint] = field(default_factory=list)
    order: tuple[str, list[str], int | None] | None = None
    distinct: bool = False
    include_flagged: bool = False


def split_query(raw_query: str) -> list[str]:
    """Decode the query, then split it on '&' outside double-quoted strings.

    Clients differ: some percent-encode the separators too (erddapy sends `%26`), so the split
    happens after decoding, and a quoted value may still contain '&'.
    """
    text = unquote(raw_query or "")
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if ch == "&" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        if ch == '"' and not escaped:
            quoted = not quoted
        escaped = ch == "\\" and not escaped
        current.append(ch)
    parts.append("".join(current))
    return parts if text else []


def parse_query(raw_query: str, table: DatasetColumns) -> TabledapQuery:
    """Parse an ERDDAP tabledap query string; RequestError says which part is wrong."""
    parts = split_query(raw_query)
    selection = parts[0] if parts and not _is_constraint_or_function(parts[0]) else ""
    rest = parts[1:] if parts and selection == parts[0] else parts
    names = [n.strip() for n in selection.split(",") if n.strip()]
    columns = [table.get(n) for n in names] or [table.columns[n] for n in table.default]
    if len({c.name for c in columns}) != len(columns):
        raise RequestError("a variable is listed twice in the selection")
    query = TabledapQuery(columns=columns)
    for part in rest:
        if not part:
            continue
        if part.startswith(f"{INCLUDE_FLAGGED}="):
            query.include_flagged = part.split("=", 1)[1].strip().lower() in ("true", "1", "yes")
            continue
        function = FUNCTION.match(part)
        if function and CONSTRAINT.match(part) is None:
            _apply_function(query, function.group(1), function.group(2), table)
            continue
        match = CONSTRAINT.match(part)
        if match is None:
            raise RequestError(
                f"constraint {part[:80]!r} is not understood: expected <variable><op><value> "
                f'with op one of {" ".join(OPERATORS)}, or a function such as orderBy("time")'
            )
        name, op, text = match.groups()
        column = table.get(name)
        query.constraints.append(Constraint(column, op, _parse_value(column, op, text.strip())))
    return query


def _is_constraint_or_function(part: str) -> bool:
    return bool(CONSTRAINT.match(part) or FUNCTION.match(part))


def _apply_function(query: TabledapQuery, name: str, arg: str, table: DatasetColumns) -> None:
    if name == "distinct":
        if arg.strip():
            raise RequestError("distinct() takes no argument")
        query.distinct = True
        return
    if name not in ORDER_FUNCTIONS:
        raise RequestError(
            f"function {name!r} is not supported; supported: distinct(), "
            + ", ".join(f"{f}(...)" for f in ORDER_FUNCTIONS)
        )
    if query.order is not None:
        raise RequestError("only one orderBy...() function per request")
    text = arg.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    items = [i.strip() for i in text.split(",") if i.strip()]
    limit = None
    if name == "orderByLimit":
        if not items or not items[-1].isdigit():
            raise RequestError('orderByLimit needs a count last, e.g. orderByLimit("station,10")')
        limit = int(items.pop())
        if not 0 < limit <= MAX_ORDER_LIMIT:
            raise RequestError(f"orderByLimit count must be 1..{MAX_ORDER_LIMIT}, got {limit}")
    if not items and name != "orderByLimit":
        raise RequestError(f"{name}() needs at least one variable name")
    selected = {c.name for c in query.columns}
    for item in items:
        table.get(item)
        if item not in selected:
            raise RequestError(f"{name}: {item!r} must also be in the list of requested variables")
    query.order = (name, items, limit)


def _parse_value(column: Column, op: str, text: str) -> Any:
    if op == "=~":
        regex = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
        try:
            re.compile(regex)
        except re.error as exc:
            raise RequestError(f"{column.name}=~ regular expression is not valid: {exc}") from None
        return regex
    if column.kind == "string":
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return text[1:-1].replace('\\"', '"')
        return text
    if column.kind == "time":
        return parse_time(text, column.name)
    if text.lower() == "nan" or text == "":
        if op not in ("=", "!="):
            raise RequestError(f"{column.name}{op}NaN: only = and != can test for missing values")
        return None
    try:
        return float(text)
    except ValueError:
        raise RequestError(
            f"{column.name}{op}{text[:40]!r}: {column.name} is numeric, the value is not a number"
        ) from None


def quote_ident(name: str) -> str:
    """A checked column name as a quoted SQL identifier."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RequestError(f"{name[:80]!r} is not a valid variable name")
    return f'"{name}"'


#: Inner-query expressions of the key columns (pushed down before the pivot).
KEY_SQL = {"station": "station_id", "longitude": "lon", "latitude": "lat", "z": "z", "time": "time"}


def compile_query(
    query: TabledapQuery, table: DatasetColumns, max_rows: int
) -> tuple[str, dict[str, Any]]:
    """DuckDB SQL and its parameters for a parsed query; values are all bound parameters."""
    params: dict[str, Any] = {"dataset_id": table.dataset_id}

    def bind(value: Any) -> str:
        key = f"p{len(params)}"
        params[key] = value
        return f"${key}"

    needed = {c.name for c in query.columns} | {c.column.name for c in query.constraints}
    data_cols = [table.columns[n] for n in needed if table.columns[n].variable is not None]
    data_cols.sort(key=lambda c: list(table.columns).index(c.name))
    variables = sorted({c.variable for c in data_cols if c.variable})
    view = "observations_all" if query.include_flagged else "observations"

    inner_where = ["dataset_id = $dataset_id"]
    if variables:
        inner_where.append(f"variable IN ({', '.join(bind(v) for v in variables)})")
    outer_where: list[str] = []
    for con in query.constraints:
        col = con.column
        if col.name in KEY_SQL and col.name not in ("longitude", "latitude"):
            inner_where.append(_condition(KEY_SQL[col.name], con, bind))
        else:
            outer_where.append(_condition(quote_ident(col.name), con, bind))

    pivots = [
        "station_id AS station",
        "any_value(lon) AS longitude",
        "any_value(lat) AS latitude",
        "z",
        "time",
    ]
    for col in data_cols:
        where_var = f"variable = {bind(col.variable)}"
        pivots.append(f"max({col.source}) FILTER (WHERE {where_var}) AS {quote_ident(col.name)}")
    inner = (
        f"SELECT {', '.join(pivots)} FROM {view} WHERE {' AND '.join(inner_where)} "
        "GROUP BY station_id, z, time"
    )
    selected = [quote_ident(c.name) for c in query.columns]
    sql = f"SELECT {'DISTINCT ' if query.distinct else ''}{', '.join(selected)} FROM ({inner}) w"
    if outer_where:
        sql += " WHERE " + " AND ".join(outer_where)
    sql += _order_clause(query, selected)
    sql += f" LIMIT {int(max_rows) + 1}"
    return sql, params


def _condition(expr: str, con: Constraint, bind: Any) -> str:
    if con.op == "=~":
        return f"regexp_full_match(CAST({expr} AS VARCHAR), {bind(con.value)})"
    if con.value is None:
        return f"{expr} IS NULL" if con.op == "=" else f"{expr} IS NOT NULL"
    return f"{expr} {SQL_OP[con.op]} {bind(con.value)}"


def _order_clause(query: TabledapQuery, selected: list[str]) -> str:
    if query.order is None:
        if query.distinct:
            return " ORDER BY " + ", ".join(selected)
        return " ORDER BY w.station, w.time, w.z"  # ERDDAP's natural order of a series
    name, items, limit = query.order
    cols = [quote_ident(i) for i in items]
    if name == "orderBy":
        return " ORDER BY " + ", ".join(cols)
    if name == "orderByDescending":
        return " ORDER BY " + ", ".join(f"{c} DESC" for c in cols)
    groups, last = (cols[:-1], cols[-1]) if name in ("orderByMax", "orderByMin") else (cols, None)
    partition = f"PARTITION BY {', '.join(groups)} " if groups else ""
    if name == "orderByLimit":
        qualify = f" QUALIFY row_number() OVER ({partition}) <= {int(limit or 1)}"
        return qualify + (" ORDER BY " + ", ".join(groups) if groups else "")
    direction = "DESC" if name == "orderByMax" else "ASC"
    qualify = f" QUALIFY row_number() OVER ({partition}ORDER BY {last} {direction}) = 1"
    return qualify + (" ORDER BY " + ", ".join(groups) if groups else "")
