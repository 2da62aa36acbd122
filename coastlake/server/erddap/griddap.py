"""ERDDAP griddap over the lake's grids, so erddapy's `griddap_initialize()` and
`to_xarray()` work unchanged: `.ncml` (what erddapy reads the axes and their ranges from),
`.das`, `.dds`, `.nc`, `.csv` and `.json`, with constraints in ERDDAP's forms
(`coastlake.server.erddap.griddap_query`). Times are served as ERDDAP serves them: seconds
since 1970-01-01T00:00:00Z in the files, ISO 8601 in CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import xarray as xr
from fastapi import APIRouter, Request, Response

from coastlake.server.erddap.griddap_query import GridRequest, parse_grid_query
from lake.deps import LakeDeps, check_dataset_id
from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from tiles.dap_model import EPOCH_UNITS, dap_entries
from tiles.dap_response import das_text, dds_text, response_parts

#: Most values one griddap answer may carry; larger requests are refused (413).
MAX_VALUES = 50_000_000
NCML_NS = "https://www.unidata.ucar.edu/namespaces/netcdf/ncml-2.2"
GRID_FORMATS = ("nc", "csv", "json", "das", "dds", "ncml")
_NC_TYPES = {"f": {4: "float", 8: "double"}, "i": {1: "byte", 2: "short", 4: "int", 8: "long"}}


def open_grid(ctx: LakeDeps, dataset_id: str) -> xr.Dataset:
    check_dataset_id(dataset_id)
    store = GridStore(ctx.storage, dataset_id)
    if not store.exists():
        raise NotFound(f"no grid {dataset_id!r} in this lake")
    return store.open()


def _seconds(values: np.ndarray) -> np.ndarray:
    return np.asarray((values - np.datetime64(0, "s")) / np.timedelta64(1, "s"), dtype="f8")


def subset(ds: xr.Dataset, request: GridRequest) -> xr.Dataset:
    """The requested variables over the requested index ranges."""
    data = [v for v in request.variables if v not in ds.dims]
    names = data or request.variables
    out = ds[names].isel({d: s for d, s in request.slices.items() if d in ds.dims})
    size = sum(int(out[v].size) for v in out.variables)
    if size > MAX_VALUES:
        raise RequestError(
            f"the request asks for {size:,} values, more than {MAX_VALUES:,}; use a stride "
            "or a smaller range",
            status=413,
        )
    return out


def to_nc(ds: xr.Dataset, dataset_id: str) -> bytes:
    """NetCDF-4 with CF time units (seconds since 1970), as ERDDAP's .nc."""
    out = ds.drop_encoding()
    for name in out.variables:
        if out[name].dtype.kind == "M":
            out[name].encoding.update(units=EPOCH_UNITS, calendar="standard", dtype="f8")
    out.attrs = {**ds.attrs, "id": dataset_id}
    fd, path = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        out.to_netcdf(path, engine="netcdf4")
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _columns(ds: xr.Dataset) -> list[str]:
    data = [str(v) for v in ds.data_vars if ds[v].dims]
    dims = [str(d) for d in (ds[data[0]].dims if data else ds.dims)]
    return dims + data


def _rows(ds: xr.Dataset) -> list[list[Any]]:
    """One row per grid point (axes first), times as ISO 8601, missing values as None."""
    cols = _columns(ds)
    frame = ds.to_dataframe().reset_index()[cols]
    for col in cols:
        if frame[col].dtype.kind == "M":
            frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = frame.astype(object).where(frame.notna(), None)
    return [list(r) for r in frame.itertuples(index=False)]


def _units(ds: xr.Dataset, name: str) -> str:
    if ds[name].dtype.kind == "M":
        return "UTC"
    return str(ds[name].attrs.get("units", ""))


def to_csv(ds: xr.Dataset) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = _columns(ds)
    writer.writerow(cols)
    writer.writerow([_units(ds, c) for c in cols])
    for row in _rows(ds):
        writer.writerow(["NaN" if v is None else v for v in row])
    return buf.getvalue().encode()


def to_json(ds: xr.Dataset) -> bytes:
    cols = _columns(ds)
    types = ["String" if ds[c].dtype.kind == "M" else str(ds[c].dtype) for c in cols]
    table = {
        "columnNames": cols,
        "columnTypes": [{"float32": "float", "float64": "double"}.get(t, t) for t in types],
        "columnUnits": [_units(ds, c) or None for c in cols],
        "rows": _rows(ds),
    }
    return json.dumps({"table": table}).encode()


def _nc_type(dtype: np.dtype) -> str:
    if dtype.kind == "M":
        return "double"
    return _NC_TYPES.get(dtype.kind, {}).get(dtype.itemsize, "String")


def _attribute(name: str, value: Any) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        values = [str(v) for v in np.asarray(value).ravel()]
        kind = "double" if np.asarray(value).dtype.kind in "fiu" else "String"
        return (
            f'<attribute name={quoteattr(name)} type="{kind}" value={quoteattr(" ".join(values))}/>'
        )
    if isinstance(value, float | int | np.number) and not isinstance(value, bool):
        return f'<attribute name={quoteattr(name)} type="double" value="{value}"/>'
    return f"<attribute name={quoteattr(name)} value={quoteattr(str(value))}/>"


def to_ncml(ds: xr.Dataset, location: str) -> bytes:
    """The dataset's structure as NcML: dimensions, and each axis with its `actual_range`
    (times in seconds since 1970), which erddapy reads to set its first constraints."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    lines.append(f'<netcdf xmlns="{NCML_NS}" location={quoteattr(location)}>')
    lines += [
        f"  <attribute name={quoteattr(str(k))} value={quoteattr(str(v))}/>"
        for k, v in ds.attrs.items()
    ]
    for dim, size in ds.sizes.items():
        lines.append(f'  <dimension name={quoteattr(str(dim))} length="{size}"/>')
    # ERDDAP's grid variables all share the dataset's axes; others (a model run's
    # forecast_reference_time per time step) stay readable by name but are not listed.
    gridded = [str(v) for v in ds.data_vars if set(ds[v].dims) == set(ds.dims)]
    for name in [*map(str, ds.dims), *gridded]:
        var = ds[name]
        shape = " ".join(map(str, var.dims))
        lines.append(
            f"  <variable name={quoteattr(name)} shape={quoteattr(shape)} "
            f'type="{_nc_type(var.dtype)}">'
        )
        attrs = dict(var.attrs)
        if var.dtype.kind == "M":
            attrs["units"] = EPOCH_UNITS
        if name in ds.dims:
            values = _seconds(var.values) if var.dtype.kind == "M" else var.values
            attrs["actual_range"] = [float(np.nanmin(values)), float(np.nanmax(values))]
        lines += [f"    {_attribute(str(k), v)}" for k, v in attrs.items()]
        lines.append("  </variable>")
    lines.append("</netcdf>")
    return ("\n".join(lines) + "\n").encode()


def griddap_router(ctx: LakeDeps) -> APIRouter:
    """/erddap/griddap/{dataset}.{fmt}?constraints"""
    api = APIRouter(prefix="/erddap/griddap", tags=["erddap"])

    @api.get("/{name}")
    def griddap(name: str, request: Request) -> Response:
        """ERDDAP griddap: `<dataset>.<fmt>?var[start:stride:stop][...]`."""
        dataset_id, dot, fmt = name.rpartition(".")
        if not dot or fmt not in GRID_FORMATS:
            raise RequestError(f"griddap: add one of .{', .'.join(GRID_FORMATS)} to the dataset id")
        ds = open_grid(ctx, dataset_id)
        if fmt == "ncml":
            return Response(
                to_ncml(ds, str(request.url).split("?")[0]), media_type="application/xml"
            )
        if fmt == "das":
            return Response(das_text(dap_entries(ds), dict(ds.attrs)), media_type="text/plain")
        out = subset(ds, parse_grid_query(request.url.query, ds, dataset_id))
        if fmt == "dds":
            parts = response_parts(dap_entries(out), [])
            return Response(dds_text(dataset_id, parts), media_type="text/plain")
        if fmt == "nc":
            headers = {"Content-Disposition": f'attachment; filename="{dataset_id}.nc"'}
            return Response(
                to_nc(out, dataset_id), media_type="application/x-netcdf", headers=headers
            )
        if fmt == "csv":
            return Response(to_csv(out), media_type="text/csv")
        return Response(to_json(out), media_type="application/json")

    return api
