"""ERDDAP griddap constraints: `sst[(2016-10-20T12:00:00Z):1:(last)][(30.5):(31)][(210):2:(211)]`.

Each bracket is one dimension, `[start:stride:stop]` (or `[start:stop]`, `[start]`), stop
inclusive as in DAP. A value in parentheses is a coordinate value (ISO time or number,
`last`, `last-<n>`), matched to the nearest index as ERDDAP does; without parentheses it is
an index (`3`, `last`, `last-2`). The answer is the `isel` slices per dimension.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import pandas as pd
import xarray as xr

from lake.errors import NotFound, RequestError

_ITEM = re.compile(r"^(?P<name>[A-Za-z_][\w]*)(?P<slabs>(\[[^\[\]]*\])*)$")
_SLAB = re.compile(r"\[([^\[\]]*)\]")
_LAST = re.compile(r"^last(?:\s*-\s*(?P<minus>[\d.eE+]+))?$")


@dataclass
class GridRequest:
    """The variables asked for and one slice per dimension of the dataset."""

    variables: list[str]
    slices: dict[str, slice]


def _split_parts(text: str) -> list[str]:
    """Split `start:stride:stop` on colons outside parentheses (ISO times hold colons)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def _coordinate_number(coord: xr.DataArray, text: str, where: str) -> float:
    """A coordinate value as a number comparable with the coordinate's values."""
    values = coord.values
    last = _LAST.match(text)
    if last:
        top = values[-1]
        if np.issubdtype(values.dtype, np.datetime64):
            top = (top - np.datetime64(0, "s")) / np.timedelta64(1, "s")
        return float(top) - float(last["minus"] or 0)
    if np.issubdtype(values.dtype, np.datetime64):
        try:
            number = float(text)  # seconds since 1970, as ERDDAP also accepts
        except ValueError:
            try:
                stamp = pd.Timestamp(text)
            except ValueError:
                raise RequestError(f"{where}: {text!r} is not a time") from None
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert("UTC").tz_localize(None)
            number = (stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        return float(number)
    try:
        return float(text)
    except ValueError:
        raise RequestError(f"{where}: {text!r} is not a number") from None


def _axis_numbers(coord: xr.DataArray) -> np.ndarray:
    values = coord.values
    if np.issubdtype(values.dtype, np.datetime64):
        return np.asarray((values - np.datetime64(0, "s")) / np.timedelta64(1, "s"), dtype="f8")
    return np.asarray(values, dtype="f8")


def _index(coord: xr.DataArray, text: str, where: str) -> int:
    size = coord.size
    if text.startswith("(") and text.endswith(")"):
        target = _coordinate_number(coord, text[1:-1].strip(), where)
        axis = _axis_numbers(coord)
        step = float(np.abs(np.diff(axis)).max()) if size > 1 else 0.0
        low, high = float(np.nanmin(axis)), float(np.nanmax(axis))
        if not low - step / 2 - 1e-9 <= target <= high + step / 2 + 1e-9:
            raise RequestError(
                f"{where}: {text} is outside the axis {coord.name} ({low:g} to {high:g})"
            )
        return int(np.nanargmin(np.abs(axis - target)))
    last = _LAST.match(text)
    if last:
        value = size - 1 - int(float(last["minus"] or 0))
    else:
        try:
            value = int(text)
        except ValueError:
            raise RequestError(f"{where}: {text!r} is not an index or (value)") from None
    if not 0 <= value < size:
        raise RequestError(f"{where}: index {text} is outside 0..{size - 1}")
    return value


def _slice(coord: xr.DataArray, text: str, where: str) -> slice:
    parts = _split_parts(text)
    if parts == [""]:
        return slice(0, coord.size, 1)
    if len(parts) == 1:
        start = stop = _index(coord, parts[0], where)
        stride = 1
    elif len(parts) == 2:
        start, stop, stride = _index(coord, parts[0], where), _index(coord, parts[1], where), 1
    elif len(parts) == 3:
        start, stop = _index(coord, parts[0], where), _index(coord, parts[2], where)
        try:
            stride = int(parts[1])
        except ValueError:
            raise RequestError(f"{where}: stride {parts[1]!r} is not a whole number") from None
    else:
        raise RequestError(f"{where}: [{text}] is not [start:stride:stop]")
    if stride < 1:
        raise RequestError(f"{where}: stride must be 1 or more")
    if start > stop:
        raise RequestError(f"{where}: start {parts[0]} comes after stop {parts[-1]}")
    return slice(start, stop + 1, stride)


def parse_grid_query(raw_query: str, ds: xr.Dataset, dataset_id: str) -> GridRequest:
    """The variables and per-dimension slices of a griddap query on `ds`."""
    text = unquote(raw_query).strip()
    items = [i.strip() for i in text.split(",") if i.strip()] if text else []
    data_vars = [str(v) for v in ds.data_vars if ds[v].ndim > 0]
    if not items:
        return GridRequest(data_vars, {str(d): slice(0, n, 1) for d, n in ds.sizes.items()})
    variables: list[str] = []
    slices: dict[str, slice] = {}
    for item in items:
        if "&" in item:
            raise RequestError(f"griddap takes no `&` constraints (got {item[:80]!r})")
        m = _ITEM.match(item)
        if not m:
            raise RequestError(f"griddap: {item[:80]!r} is not var[start:stride:stop]...")
        name = m["name"]
        if name not in ds.variables:
            raise NotFound(f"dataset {dataset_id!r} has no variable {name!r}")
        dims = [str(d) for d in ds[name].dims]
        slabs = _SLAB.findall(m["slabs"])
        if slabs and len(slabs) != len(dims):
            raise RequestError(
                f"{name} has {len(dims)} dimensions ({', '.join(dims)}), got "
                f"{len(slabs)} bracketed constraints"
            )
        for dim, slab in zip(dims, slabs or [""] * len(dims), strict=True):
            s = _slice(ds[dim], slab, f"{name}[{dim}]")
            if slices.setdefault(dim, s) != s:
                raise RequestError(f"every variable must ask for the same {dim} range")
        variables.append(name)  # an axis asked with data variables comes along anyway
    return GridRequest(variables, slices)
