"""CF discrete-sampling-geometry (timeSeries) NetCDF from observation rows, as bytes.

One writer for every NetCDF of station data the lake hands out, so each file has the same
structure and the same flag, time and coordinate attributes:

- several stations (tabledap `.nc`): a contiguous ragged array, dimensions `timeseries` and
  `obs` with `rowSize`, as ERDDAP's `.ncCF` has it (CF appendix H.2.4);
- one station (`Lake.series`, the station download, a monthly archive file): the station and
  its position are scalars and the values run along `time` (CF H.2.3), the layout of NCEI's
  orthogonal timeSeries template.

Grids are not observation rows; they share only `dataset_to_netcdf_bytes`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from lake.flags import FLAG_MEANINGS, FLAG_VALUES
from lake.registry import Stream

Layout = Literal["ragged", "single"]
#: station: the timeseries_id; instance: describes the station (lon, lat of a moored buoy);
#: coordinate: locates one observation (time, a z that varies); data: a value or a flag.
Role = Literal["station", "instance", "coordinate", "data"]
Kind = Literal["float", "flag", "time", "string"]

CONVENTIONS = "CF-1.11, ACDD-1.3"
#: Times are stored as ERDDAP and NCEI store them, unless a variable's attrs give other units.
TIME_UNITS = "seconds since 1970-01-01T00:00:00Z"
#: Flags are int8 like the table's qc columns; -127 marks a row that has no flag at all.
FLAG_FILL = np.int8(-127)


@dataclass(frozen=True, slots=True)
class NcVariable:
    """One column of the rows and the NetCDF variable it becomes."""

    name: str
    kind: Kind = "float"
    role: Role = "data"
    attrs: Mapping[str, Any] = field(default_factory=dict)


def acdd_attrs(stream: Stream) -> dict[str, str]:
    """The ACDD global attributes a stream gives every file made from it."""
    return {
        "title": stream.title,
        "summary": stream.summary.strip(),
        "institution": stream.provider.name,
        "license": stream.license,
        "references": stream.citation,
    }


def timeseries_dataset(
    rows: pd.DataFrame,
    variables: Sequence[NcVariable],
    attrs: Mapping[str, Any] | None = None,
    *,
    layout: Layout = "ragged",
) -> xr.Dataset:
    """The rows (one per observation, a column per variable) as a CF DSG timeSeries dataset.

    Exactly one variable has role "station" and one has kind "time". Data variables get a
    `coordinates` attribute naming the time, position and station variables present; flags
    get the QARTOD `flag_values` and `flag_meanings`. An instance variable takes the last
    value its station reported (a buoy that was moved is where it is now). `attrs` are the
    global attributes; they may override the defaults (`featureType` spelled as ERDDAP does,
    a longer `Conventions`), and empty values are left out. "single" needs one station and
    unique times. Raises ValueError when the rows or variables do not fit the layout.
    """
    station = _one(variables, lambda v: v.role == "station", "role 'station'")
    time = _one(variables, lambda v: v.kind == "time", "kind 'time'")
    absent = [v.name for v in variables if v.name not in rows.columns]
    if absent:
        raise ValueError(f"the rows have no column {absent[0]!r}")
    frame = rows.assign(**{station.name: rows[station.name].fillna("").astype(str)})
    frame = frame.sort_values([station.name, time.name], kind="stable").reset_index(drop=True)
    latest = frame.groupby(station.name, sort=False).last()  # last non-null value of each
    stations = latest.index.to_numpy(dtype=object)
    if layout == "single" and len(stations) != 1:
        raise ValueError(f"a single-station file needs rows of one station, not {len(stations)}")
    obs_dim = "time" if layout == "single" else "obs"
    coordinates = " ".join(
        [time.name]
        + [v.name for v in variables if v.role in ("instance", "coordinate") and v is not time]
        + [station.name]
    )
    data_vars: dict[str, xr.Variable] = {}
    coords: dict[str, xr.Variable] = {}
    for v in variables:
        if v.role in ("station", "instance"):
            values = stations if v is station else latest[v.name].to_numpy()
            var = _variable(v, () if layout == "single" else ("timeseries",), values, layout)
        else:
            var = _variable(v, (obs_dim,), frame[v.name], layout)
            if v.role == "data":
                var.attrs["coordinates"] = coordinates
        if layout == "single" and v.role != "data":
            coords[v.name] = var
        else:
            data_vars[v.name] = var
        if layout == "ragged" and v is station:
            counts = frame.groupby(station.name, sort=False).size().to_numpy(dtype="int32")
            data_vars["rowSize"] = xr.Variable(
                "timeseries",
                counts,
                {
                    "sample_dimension": obs_dim,
                    "long_name": "Number of Observations for this TimeSeries",
                },
            )
    ds = xr.Dataset(data_vars, coords)
    ds.attrs = _global_attrs(frame[time.name], attrs or {})
    return ds


def dataset_to_netcdf_bytes(ds: xr.Dataset) -> bytes:
    """The dataset as a NetCDF-4 file, in memory.

    Through a temporary file: netCDF4 writes through HDF5, which wants a real file, and
    without a path xarray would fall back to NetCDF-3. The file is removed in every case.
    """
    fd, path = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        ds.to_netcdf(path, engine="netcdf4")
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def observations_to_netcdf(
    rows: pd.DataFrame,
    variables: Sequence[NcVariable],
    attrs: Mapping[str, Any] | None = None,
    *,
    layout: Layout = "ragged",
) -> bytes:
    """The rows as a CF DSG timeSeries NetCDF-4 file (see `timeseries_dataset`)."""
    return dataset_to_netcdf_bytes(timeseries_dataset(rows, variables, attrs, layout=layout))


def _one(
    variables: Sequence[NcVariable], test: Callable[[NcVariable], bool], what: str
) -> NcVariable:
    found = [v for v in variables if test(v)]
    if len(found) != 1:
        raise ValueError(f"a timeSeries file needs exactly one variable of {what}, got {found}")
    return found[0]


def _variable(v: NcVariable, dims: tuple[str, ...], values: Any, layout: Layout) -> xr.Variable:
    """The values of `v` with its attributes and how they are stored."""
    attrs = dict(v.attrs)
    encoding: dict[str, Any] = {}
    if v.kind == "time":
        data: npt.NDArray[Any] = _utc_naive(pd.Series(values)).to_numpy(dtype="datetime64[ns]")
        encoding = {"units": attrs.pop("units", TIME_UNITS), "dtype": "float64"}
        # CF forbids missing values in a coordinate variable (the single layout's time axis).
        encoding["_FillValue"] = np.nan if layout == "ragged" else None
    elif v.kind == "flag":
        data = pd.Series(values).to_numpy(dtype="float64")
        if not np.isnan(data).any():
            data = data.astype(np.int8)
        attrs.update(flag_values=FLAG_VALUES, flag_meanings=FLAG_MEANINGS)
        encoding = {"dtype": "int8", "_FillValue": FLAG_FILL}
    elif v.kind == "string":
        data = pd.Series(values).fillna("").astype(str).to_numpy(dtype=object)
    else:
        data = pd.Series(values).to_numpy(dtype="float64")
        encoding = {"_FillValue": np.nan}
    if v.role == "station":
        attrs["cf_role"] = "timeseries_id"
    if not dims:
        data = data.reshape(())
    return xr.Variable(dims, data, attrs, encoding)


def _utc_naive(times: pd.Series) -> pd.Series:
    times = pd.to_datetime(times)
    return times.dt.tz_convert("UTC").dt.tz_localize(None) if times.dt.tz is not None else times


def _global_attrs(times: pd.Series, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """featureType and Conventions, the ACDD time coverage, then the caller's attributes."""
    out: dict[str, Any] = {
        "featureType": "timeSeries",
        "cdm_data_type": "TimeSeries",
        "Conventions": CONVENTIONS,
    }
    valid = _utc_naive(times).dropna()
    if len(valid):
        out["time_coverage_start"] = valid.min().isoformat() + "Z"
        out["time_coverage_end"] = valid.max().isoformat() + "Z"
    out.update({k: v for k, v in attrs.items() if v is not None and v != ""})
    return out
