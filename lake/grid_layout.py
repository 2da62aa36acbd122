"""How a grid is laid out in its Zarr store: chunk sizes, encodings and the group of each
model run.

One plan serves both kinds of reader: a map tile reads a handful of objects, a point time
series a few more, never whole maps. Every write (a whole grid, a best estimate, a model
run) goes through `write_zarr`, so they are all cut and encoded the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr

#: The group holding one subgroup per model run, named by its reference time.
RUNS_GROUP = "runs"
#: Aim for chunks of about this many bytes: big enough that a map tile reads a handful of
#: objects, small enough that a point time series does not drag whole maps along.
TARGET_CHUNK_BYTES = 2_000_000
SPATIAL_CHUNK = 256
MAX_TIME_CHUNK = 64


def chunk_plan(ds: xr.Dataset, time_dim: str = "time") -> dict[str, int]:
    """Chunk sizes good for both a map tile and a point series.

    Space is cut in blocks of up to 256×256 (one web tile at native resolution reads one to
    four); time is grouped so a chunk holds about 2 MB, so a point series over a month of
    daily maps reads a few objects instead of one per day. Other dims (depth) get 1: a
    map is drawn at one depth.
    """
    plan: dict[str, int] = {}
    spatial = 1
    itemsize = max((v.dtype.itemsize for v in ds.data_vars.values()), default=4)
    for dim, size in ds.sizes.items():
        if dim in ("lat", "latitude", "lon", "longitude", "y", "x"):
            plan[str(dim)] = min(int(size), SPATIAL_CHUNK)
            spatial *= plan[str(dim)]
    for dim, size in ds.sizes.items():
        if str(dim) in plan:
            continue
        if dim == time_dim:
            # Not capped by the current length: a store that starts with one step grows
            # into its time chunks as later steps are appended.
            plan[str(dim)] = max(
                1, min(MAX_TIME_CHUNK, TARGET_CHUNK_BYTES // max(1, spatial * itemsize))
            )
        else:
            plan[str(dim)] = 1 if size > 1 else int(size)
    return plan


def encoding(ds: xr.Dataset, plan: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Zarr chunk sizes per variable, following `plan` (whole dims it does not name)."""
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        if not var.dims:
            continue
        enc[str(name)] = {"chunks": tuple(plan.get(str(d), var.sizes[d]) for d in var.dims)}
    return enc


def dask_chunks(ds: xr.Dataset, plan: dict[str, int]) -> dict[str, int]:
    """Dask chunks that line up with the Zarr chunks (each task writes whole chunks)."""
    return {str(d): min(plan.get(str(d), n), n) for d, n in ds.sizes.items()}


def clean_for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """Drop netCDF-only encodings (chunk sizes, filters) that do not apply to Zarr v3."""
    ds = ds.copy()
    for var in ds.variables.values():
        keep = {
            k: v
            for k, v in var.encoding.items()
            if k in ("units", "calendar", "dtype", "_FillValue", "scale_factor", "add_offset")
        }
        var.encoding = keep
    return ds


def write_zarr(
    ds: xr.Dataset, store: Any, plan: dict[str, int], group: str | None = None
) -> xr.Dataset:
    """Replace `group` (the root if None) of `store` with `ds`, cut as `plan` says; returns
    what was written. Nothing is visible to readers until the caller commits."""
    clean = clean_for_zarr(ds).chunk(dask_chunks(ds, plan))
    clean.to_zarr(store, group=group, mode="w", consolidated=False, encoding=encoding(clean, plan))
    return clean


def extent_text(ds: xr.Dataset) -> str:
    """The time extent of `ds` for a log line ('3 times 2024-01-01T00:00..2024-01-01T02:00')."""
    if "time" in ds.coords and ds["time"].size:
        t = pd.to_datetime(ds["time"].values)
        return f"{ds['time'].size} times {t.min():%Y-%m-%dT%H:%M}..{t.max():%Y-%m-%dT%H:%M}"
    return "no time axis"
