"""CQL2 filters (the STAC API Filter extension) translated to parameterized DuckDB SQL.

Supported: CQL2-JSON with and/or/not, comparisons (=, <>, <, <=, >, >=), like, in,
isNull, between, the array operators a_contains, a_containedBy, a_overlaps, a_equals, and
s_intersects on item geometries (exact, DuckDB spatial); CQL2-text is read by the reference
parser (the `cql2` package) into the same JSON, so OR, NOT, parentheses and TIMESTAMP()
work in both. `cf:standard_name` is the list of the CF standard names an item measures:
`cf:standard_name = 'x'` means "measures x". A property no item has is NULL (the queryables
say `additionalProperties: true`), as CQL2 reads a missing property. Values are always
passed as parameters, never pasted into SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cql2

#: Deepest nesting of operations a filter may have (a guard against stack exhaustion).
MAX_DEPTH = 40
#: A property no item has: CQL2 reads it as NULL.
MISSING = "NULL"


class FilterError(ValueError):
    """A filter the API cannot run; the message says what and why (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Column:
    """How a queryable maps to SQL: the expression and whether it holds a list."""

    sql: str
    is_list: bool = False


_COMPARE = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class Translator:
    """Turns one filter into (sql, params) against the columns it was given."""

    def __init__(self, columns: Mapping[str, Column]) -> None:
        self.columns = columns
        self.params: list[Any] = []

    def column(self, node: Any) -> Column:
        if not (isinstance(node, Mapping) and "property" in node):
            raise FilterError(f"expected a property, got {node!r}")
        name = str(node["property"]).removeprefix("properties.")
        return self.columns.get(name, Column(MISSING))

    def value(self, node: Any) -> str:
        if isinstance(node, Mapping) and "timestamp" in node:
            self.params.append(str(node["timestamp"]))
            return "CAST(? AS TIMESTAMPTZ)"
        if isinstance(node, Mapping) and "date" in node:
            self.params.append(str(node["date"]))
            return "CAST(? AS TIMESTAMPTZ)"
        if isinstance(node, Mapping) and "property" in node:
            return self.column(node).sql
        if isinstance(node, Mapping | list) and not isinstance(node, str):
            if isinstance(node, list):
                self.params.append(list(node))
                return "?"
            raise FilterError(f"unsupported value {node!r}")
        self.params.append(node)
        return "?"

    def sql(self, node: Any) -> str:
        if not isinstance(node, Mapping) or "op" not in node:
            raise FilterError(f"expected an operation {{'op': ..., 'args': [...]}}, got {node!r}")
        op = str(node["op"]).lower()
        args = list(node.get("args") or [])
        handler = _HANDLERS.get(op)
        if handler is None:
            raise FilterError(f"operator {op!r} is not supported; supported: {sorted(_HANDLERS)}")
        return handler(self, args)


def _logical(word: str) -> Callable[[Translator, list[Any]], str]:
    def run(t: Translator, args: list[Any]) -> str:
        if not args:
            raise FilterError(f"{word} needs arguments")
        return "(" + f" {word} ".join(t.sql(a) for a in args) + ")"

    return run


def _not(t: Translator, args: list[Any]) -> str:
    if len(args) != 1:
        raise FilterError("not needs exactly one argument")
    return f"(NOT {t.sql(args[0])})"


def _compare(op: str) -> Callable[[Translator, list[Any]], str]:
    def run(t: Translator, args: list[Any]) -> str:
        if len(args) != 2:
            raise FilterError(f"{op} needs two arguments")
        left, right = args
        if (
            isinstance(right, Mapping)
            and "property" in right
            and not (isinstance(left, Mapping) and "property" in left)
        ):
            left, right = right, left
        col = t.column(left) if isinstance(left, Mapping) and "property" in left else None
        if col is not None and col.is_list:
            value = t.value(right)
            if op == "=":
                return f"list_contains({col.sql}, {value})"
            if op in ("<>", "!="):
                return f"NOT list_contains({col.sql}, {value})"
            raise FilterError(f"{op} does not apply to a list property")
        return f"({t.value(left)} {_COMPARE[op]} {t.value(right)})"

    return run


def _like(t: Translator, args: list[Any]) -> str:
    col = t.column(args[0])
    pattern = t.value(args[1])
    if col.is_list:
        return f"len(list_filter({col.sql}, x -> x LIKE {pattern})) > 0"
    return f"({col.sql} LIKE {pattern})"


def _in(t: Translator, args: list[Any]) -> str:
    col = t.column(args[0])
    values = args[1]
    if not isinstance(values, list):
        raise FilterError("in needs a list of values")
    t.params.append(values)
    if col.is_list:
        return f"list_has_any({col.sql}, ?)"
    return f"list_contains(?, {col.sql})"


def _between(t: Translator, args: list[Any]) -> str:
    return f"({t.value(args[0])} BETWEEN {t.value(args[1])} AND {t.value(args[2])})"


def _is_null(t: Translator, args: list[Any]) -> str:
    return f"({t.column(args[0]).sql} IS NULL)"


def _array(sql: str) -> Callable[[Translator, list[Any]], str]:
    def run(t: Translator, args: list[Any]) -> str:
        col = t.column(args[0])
        if not col.is_list:
            raise FilterError("array operators need a list property such as cf:standard_name")
        if not isinstance(args[1], list):
            raise FilterError("array operators need a list of values")
        t.params.append(args[1])
        return sql.format(col=col.sql)

    return run


def _bbox_of(geometry: Any) -> list[float]:
    if isinstance(geometry, Mapping) and "bbox" in geometry:
        return [float(v) for v in geometry["bbox"]]
    if isinstance(geometry, list) and len(geometry) in (4, 6):
        return [float(v) for v in geometry]
    coords: list[tuple[float, float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list | tuple) and node and isinstance(node[0], int | float):
            coords.append((float(node[0]), float(node[1])))
        elif isinstance(node, list | tuple):
            for n in node:
                walk(n)

    if isinstance(geometry, Mapping):
        walk(geometry.get("coordinates"))
    if not coords:
        raise FilterError(f"cannot read a geometry from {geometry!r}")
    xs, ys = zip(*coords, strict=True)
    return [min(xs), min(ys), max(xs), max(ys)]


def geojson_of(geometry: Any) -> str:
    """A GeoJSON geometry (or a bbox, as its polygon) as text for ST_GeomFromGeoJSON."""
    if isinstance(geometry, Mapping) and ("coordinates" in geometry or "geometries" in geometry):
        return json.dumps(geometry)
    w, s, e, n = _bbox_of(geometry)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def _s_intersects(t: Translator, args: list[Any]) -> str:
    if len(args) != 2:
        raise FilterError("s_intersects needs a property and a geometry")
    if not (isinstance(args[0], Mapping) and args[0].get("property") == "geometry"):
        raise FilterError("s_intersects applies to the `geometry` property")
    t.params.append(geojson_of(args[1]))
    return "ST_Intersects(_geom, ST_GeomFromGeoJSON(?))"


_HANDLERS: dict[str, Callable[[Translator, list[Any]], str]] = {
    "and": _logical("AND"),
    "or": _logical("OR"),
    "not": _not,
    **{op: _compare(op) for op in _COMPARE},
    "like": _like,
    "in": _in,
    "between": _between,
    "isnull": _is_null,
    "a_contains": _array("list_has_all({col}, ?)"),
    "a_containedby": _array("list_has_all(?, {col})"),
    "a_overlaps": _array("list_has_any({col}, ?)"),
    "a_equals": _array("list_sort({col}) = list_sort(?)"),
    "s_intersects": _s_intersects,
}


def parse_text(text: str) -> dict[str, Any]:
    """CQL2-text to CQL2-JSON with the reference parser."""
    try:
        return dict(cql2.parse_text(text).to_json())
    except (cql2.ParseError, ValueError) as exc:
        raise FilterError(f"cannot read the CQL2-text filter {text!r}: {exc}") from None


def _depth(node: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a JSON value, counting only up to `limit` + 1 (no recursion)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        children = value.values() if isinstance(value, Mapping) else value
        if isinstance(value, Mapping | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def to_sql(
    expression: Mapping[str, Any] | str, columns: Mapping[str, Column]
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters for a CQL2-JSON dict or CQL2-text string."""
    node = parse_text(expression) if isinstance(expression, str) else expression
    if _depth(node) > MAX_DEPTH * 2:  # an operation is two JSON levels (op, args)
        raise FilterError(f"the filter nests deeper than {MAX_DEPTH} operations")
    translator = Translator(columns)
    try:
        return translator.sql(node), translator.params
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError(f"the filter is not valid CQL2: {exc!r}") from None
