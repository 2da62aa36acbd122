"""A lake grid as a DAP2 dataset: which variables are Arrays and Grids, in which DAP types.

Every dimension's coordinate is an Array; every data variable (and non-index coordinate) with
dimensions is a Grid whose maps are those coordinates; a 0-d coordinate is a scalar. DAP2
has no 64-bit integers, no signed bytes and no times, so values are served as THREDDS and
ERDDAP serve them: times (any datetime, model run times included) as Float64
`seconds since 1970-01-01T00:00:00Z`, int64 as Float64, int8 as Int16. A variable of a kind
DAP2 cannot carry (strings, objects) is left out rather than served as a DAP String that
netCDF clients cannot read as a variable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

EPOCH_UNITS = "seconds since 1970-01-01T00:00:00Z"

# numpy kind+itemsize -> (DAP2 type, numpy dtype the values are cast to before XDR)
_NUMERIC: dict[str, tuple[str, str]] = {
    "b1": ("Byte", "u1"),
    "u1": ("Byte", "u1"),
    "i1": ("Int16", "i2"),
    "i2": ("Int16", "i2"),
    "u2": ("UInt16", "u2"),
    "i4": ("Int32", "i4"),
    "u4": ("UInt32", "u4"),
    "i8": ("Float64", "f8"),
    "u8": ("Float64", "f8"),
    "f2": ("Float32", "f4"),
    "f4": ("Float32", "f4"),
    "f8": ("Float64", "f8"),
}


@dataclass
class DapArray:
    """One DAP Array (or scalar when `dims` is empty) and how to read it as its DAP type."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dap_type: str
    attrs: dict[str, Any]
    read: Callable[[tuple[slice, ...]], np.ndarray] = field(repr=False)


@dataclass
class DapGrid:
    """A DAP Grid: an array and one map (coordinate array) per dimension."""

    name: str
    array: DapArray
    maps: list[DapArray]


DapEntry = DapArray | DapGrid


def _time_seconds(values: np.ndarray) -> np.ndarray:
    ns = values.astype("datetime64[ns]")
    seconds = (ns - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
    return np.where(np.isnat(ns), np.nan, seconds).astype("f8")


def _dap_form(var: xr.Variable) -> tuple[str, Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """DAP type, a converter of read values and the attributes that describe the converted
    values; raises KeyError for a kind DAP2 cannot carry."""
    attrs = {k: v for k, v in var.attrs.items() if k not in ("units", "calendar", "_FillValue")}
    if var.dtype.kind == "M":
        attrs.update(units=EPOCH_UNITS, calendar="standard")
        return "Float64", _time_seconds, attrs
    if var.dtype.kind == "m":
        attrs["units"] = "seconds"
        return "Float64", lambda v: (v / np.timedelta64(1, "s")).astype("f8"), attrs
    dap_type, cast = _NUMERIC[f"{var.dtype.kind}{var.dtype.itemsize}"]
    if "units" in var.attrs:
        attrs["units"] = var.attrs["units"]
    return dap_type, lambda v: np.asarray(v).astype(cast), attrs


def _array(ds: xr.Dataset, name: str) -> DapArray:
    var = ds[name].variable
    dap_type, convert, attrs = _dap_form(var)

    def read(slices: tuple[slice, ...]) -> np.ndarray:
        return convert(np.asarray(var[slices].values))

    return DapArray(str(name), tuple(map(str, var.dims)), var.shape, dap_type, attrs, read)


def _index_array(name: str, size: int) -> DapArray:
    """A dimension without a coordinate variable gets its indices, as netCDF does."""
    return DapArray(name, (name,), (size,), "Int32", {}, lambda s: np.arange(size, dtype="i4")[s])


def dap_entries(ds: xr.Dataset) -> dict[str, DapEntry]:
    """The dataset's DAP2 variables by name, in DDS order: coordinates first."""
    maps: dict[str, DapArray] = {}
    for dim, size in ds.sizes.items():
        name = str(dim)
        try:
            maps[name] = _array(ds, name) if name in ds.variables else _index_array(name, size)
        except KeyError:
            maps[name] = _index_array(name, size)
    out: dict[str, DapEntry] = dict(maps)
    others = [n for n in ds.data_vars] + [n for n in ds.coords if n not in ds.dims]
    for var_name in others:
        try:
            array = _array(ds, str(var_name))
        except KeyError:  # strings, objects: no DAP2 form netCDF clients read
            continue
        if array.dims:
            out[array.name] = DapGrid(array.name, array, [maps[d] for d in array.dims])
        else:
            out[array.name] = array
    return out


def _das_value(value: Any) -> tuple[str, list[str]] | None:
    """DAS type and printed values of one attribute; None to leave it out."""
    values = list(value) if isinstance(value, list | tuple | np.ndarray) else [value]
    if not values:
        return None
    first = values[0]
    if isinstance(first, str | bytes):
        texts = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        escaped = [t.replace("\\", "\\\\").replace('"', '\\"') for t in texts]
        return "String", [f'"{t}"' for t in escaped]
    if isinstance(first, bool | np.bool_):
        return "String", [f'"{str(bool(v)).lower()}"' for v in values]
    if isinstance(first, np.integer | int):
        ints = [int(v) for v in values]
        if all(-(2**31) <= v < 2**31 for v in ints):
            return "Int32", [str(v) for v in ints]
        return "Float64", [repr(float(v)) for v in ints]
    if isinstance(first, np.floating | float):
        dap_type = "Float32" if isinstance(first, np.float32) else "Float64"
        texts = []
        for v in values:
            f = float(v)
            texts.append("NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity"))
            if math.isfinite(f):
                texts[-1] = repr(f)
        return dap_type, texts
    return None


def das_block(name: str, attrs: dict[str, Any], indent: str = "    ") -> list[str]:
    """One DAS attribute container."""
    lines = [f"{indent}{name} {{"]
    for key, value in attrs.items():
        typed = _das_value(value)
        if typed is None:
            continue
        dap_type, texts = typed
        lines.append(f"{indent}    {dap_type} {key} {', '.join(texts)};")
    lines.append(f"{indent}}}")
    return lines
