"""CF discrete-sampling-geometry (timeSeries) NetCDF from observation rows, as bytes.

One writer for every NetCDF of station data the lake hands out, so each file has the same
structure and the same flag, time and coordinate attributes:

- several stations (tabledap `.nc`): a contiguous ragged array, dimensions `timeseries` and
  `obs` with `rowSize`, as ERDDAP's `.ncCF` has it (CF appendix H.2.4);
- one station (`Lake.series`, the station download, a monthly archive file): the station and
  its position are scalars and the values run along `time` (CF H.2.3), the layout of NCEI's
  orthogonal timeSeries template.

Every file's metadata comes from `lake.nc_attrs`: the stream's from the registry, the rest
computed from the values written. `station_series_dataset` makes the single-station file
with every QARTOD test's flag and the provider's flag beside each variable (the station
download and the monthly NCEI archive file); `grid_dataset` gives a grid subset the same
treatment.
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

from lake.flags import FLAG_MEANINGS, FLAG_VALUES, NOT_EVALUATED
from lake.nc_attrs import (
    CONVENTIONS as CONVENTIONS,
)
from lake.nc_attrs import (
    NCEI_CONVENTIONS,
    NCEI_GRID_TEMPLATE,
    NCEI_TIMESERIES_TEMPLATE,
    QARTOD_MANUALS,
    QC_STANDARD_NAMES,
    finish,
    stream_attrs,
)
from lake.registry import Stream

Layout = Literal["ragged", "single"]
#: station: the timeseries_id; instance: describes the station (lon, lat of a moored buoy);
#: coordinate: locates one observation (time, a z that varies); data: a value or a flag.
Role = Literal["station", "instance", "coordinate", "data"]
#: flag: a QARTOD flag; provider_flag: a provider's flags coded 1..n (its attrs say how).
Kind = Literal["float", "flag", "provider_flag", "time", "string"]

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
    """The global attributes a stream gives every file made from it (`nc_attrs.stream_attrs`)."""
    return stream_attrs(stream)


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
            # IOOS 1.2 reads "one platform" as a timeseries_id of length 1, not a scalar.
            dims = ("timeseries",) if layout == "ragged" or v is station else ()
            var = _variable(v, dims, values, layout)
        else:
            var = _variable(v, (obs_dim,), frame[v.name], layout)
            if v.role == "data":
                var.attrs["coordinates"] = coordinates
                if v.kind == "float":
                    # IOOS 1.2: a measurement names its platform variable; here the station.
                    var.attrs.setdefault("platform", station.name)
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
    ds.attrs = _global_attrs(layout)
    return finish(ds, attrs or {})


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
        encoding = {
            "units": attrs.pop("units", TIME_UNITS),
            "calendar": attrs.pop("calendar", "standard"),
            "dtype": "float64",
        }
        # CF forbids missing values in a coordinate variable (the single layout's time axis).
        encoding["_FillValue"] = np.nan if layout == "ragged" else None
    elif v.kind == "flag":
        data = pd.Series(values).to_numpy(dtype="float64")
        if not np.isnan(data).any():
            data = data.astype(np.int8)
        attrs.update(flag_values=FLAG_VALUES, flag_meanings=FLAG_MEANINGS)
        encoding = {"dtype": "int8", "_FillValue": FLAG_FILL}
    elif v.kind == "provider_flag":
        data = pd.Series(values).to_numpy(dtype="float64")
        encoding = {"dtype": "int16", "_FillValue": np.int16(0)}
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


def _global_attrs(layout: Layout) -> dict[str, Any]:
    """featureType and Conventions; a single-station file follows NCEI's orthogonal template."""
    if layout == "single":
        return {
            "featureType": "timeSeries",
            "cdm_data_type": "Station",
            "Conventions": NCEI_CONVENTIONS,
            "ncei_template_version": NCEI_TIMESERIES_TEMPLATE,
        }
    return {"featureType": "timeSeries", "cdm_data_type": "TimeSeries", "Conventions": CONVENTIONS}


#: The station and where it is: scalars of a single-station file (the station's id has the
#: `timeseries` dimension of length 1).
SERIES_POSITION = (
    NcVariable(
        "time",
        "time",
        "coordinate",
        {"standard_name": "time", "axis": "T", "long_name": "time (UTC)"},
    ),
    NcVariable("station_id", "string", "station", {"long_name": "station identifier"}),
    NcVariable(
        "lon",
        role="instance",
        attrs={"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
    ),
    NcVariable(
        "lat",
        role="instance",
        attrs={"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
    ),
    NcVariable(
        "z",
        role="instance",
        attrs={"standard_name": "height", "units": "m", "positive": "up", "axis": "Z"},
    ),
)
#: Columns of the observation rows that `station_series_dataset` reads, besides the QC ones.
SERIES_COLUMNS = ("time", "z", "lon", "lat", "variable", "value", "units")
#: Provider flags become coded flag variables up to this many distinct values; past it (a
#: flag that carries a per-value number, as CO-OPS's sigma does) they stay text.
MAX_PROVIDER_CODES = 100


def station_series_dataset(
    rows: pd.DataFrame,
    station_id: str,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Long rows of one station as a single-station timeSeries (NCEI orthogonal template).

    Each variable (per height, `<name>_at_<z>m`, where it has several) gets its aggregate
    QARTOD flag `<name>_qc_agg`, one flag per QARTOD test that has flagged it
    (`<name>_qc_<test>`), and the provider's flag (`<name>_provider_flag`), all named in its
    `ancillary_variables`. Rows may carry any of the table's `qc_*` columns and
    `provider_flag`; absent ones are left out. Raises ValueError if the rows are empty.
    """
    if rows.empty:
        raise ValueError(f"no rows for station {station_id!r}")
    rows = rows.copy()
    levels = rows.groupby("variable")["z"].transform("nunique")
    rows["name"] = np.where(
        levels.to_numpy() > 1,
        rows["variable"].astype(str) + rows["z"].map(lambda z: f"_at_{z:g}m"),
        rows["variable"].astype(str),
    )
    times = pd.Index(np.sort(rows["time"].unique()), name="time")
    frame = rows.groupby("time")[["lon", "lat", "z"]].last().reindex(times)
    frame["station_id"] = station_id
    columns: dict[str, Any] = {}
    variables = list(SERIES_POSITION)
    tests = [t for t in QC_STANDARD_NAMES if f"qc_{t}" in rows.columns]
    for name, group in rows.groupby("name", sort=True):
        name = str(group["name"].iloc[0])
        by_time = group.set_index("time")
        columns[name] = by_time["value"].reindex(times).to_numpy(dtype="float64")
        data_attrs = {
            "standard_name": str(group["variable"].iloc[0]),
            "units": str(group["units"].iloc[0]),
        }
        variables.append(NcVariable(name, attrs=data_attrs))
        ancillary: list[str] = []
        for test in tests:
            flags = by_time[f"qc_{test}"].reindex(times).astype("float64")
            if test != "agg" and flags.isna().all():
                continue  # a test that never ran on this variable
            flag_name = f"{name}_qc_{test}"
            columns[flag_name] = flags.fillna(NOT_EVALUATED).to_numpy()
            ancillary.append(flag_name)
            variables.append(_qc_variable(flag_name, name, test))
        if "provider_flag" in by_time and by_time["provider_flag"].notna().any():
            flag_name = f"{name}_provider_flag"
            variable, coded = _provider_flag(flag_name, name, by_time["provider_flag"], times)
            columns[flag_name] = coded
            ancillary.append(flag_name)
            variables.append(variable)
        if ancillary:
            data_attrs["ancillary_variables"] = " ".join(ancillary)
    frame = pd.concat([frame, pd.DataFrame(columns, index=times)], axis=1).reset_index()
    return timeseries_dataset(frame, variables, attrs, layout="single")


def _qc_variable(flag_name: str, data_name: str, test: str) -> NcVariable:
    what = "aggregate QARTOD flag" if test == "agg" else f"QARTOD {test.replace('_', ' ')} test"
    return NcVariable(
        flag_name,
        "flag",
        attrs={
            "standard_name": QC_STANDARD_NAMES[test],
            "long_name": f"{what} of {data_name}",
            "references": QARTOD_MANUALS,
        },
    )


def _provider_flag(
    flag_name: str, data_name: str, flags: pd.Series, times: pd.Index
) -> tuple[NcVariable, Any]:
    """The provider's flags of a variable: coded with flag_values/flag_meanings when they
    are a vocabulary, verbatim text when nearly every value is different."""
    text = flags.reindex(times)
    long_name = f"quality flag of {data_name} as the provider sent it"
    distinct = sorted(text.dropna().astype(str).unique())
    if len(distinct) > MAX_PROVIDER_CODES:
        return NcVariable(flag_name, "string", attrs={"long_name": long_name}), text.to_numpy()
    codes = {flag: i + 1 for i, flag in enumerate(distinct)}
    meanings = " ".join(_flag_word(flag) for flag in distinct)
    coded = text.map(codes).astype("float64").to_numpy()
    variable = NcVariable(
        flag_name,
        "provider_flag",
        attrs={
            "long_name": long_name,
            "flag_values": np.arange(1, len(distinct) + 1, dtype=np.int16),
            "flag_meanings": meanings,
            "comment": "flag_meanings spell the provider's flags: "
            + "; ".join(f"{codes[f]} = {f}" for f in distinct),
        },
    )
    return variable, coded


def _flag_word(flag: str) -> str:
    """A provider flag as one CF flag_meanings word (letters, digits, _ - . + @)."""
    word = "".join(ch if ch.isalnum() or ch in "-.+@" else "_" for ch in flag.strip()).strip("_")
    return f"flag_{word or 'blank'}"


def grid_dataset(ds: xr.Dataset, attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A grid (or a subset of one) ready to write: the NCEI grid template's attributes, the
    coverage and ranges computed from its values (the source's stale ones dropped), times
    as float seconds, coordinates without fill values.

    No `featureType`: CF defines it for discrete sampling geometries only and its checker
    fails "grid", which NCEI's grid template (and IOOS 1.2) ask for; CF wins.
    """
    ds = ds.copy()
    ds.attrs = {
        **{k: v for k, v in ds.attrs.items() if not k.startswith(_STALE_GLOBALS)},
        "cdm_data_type": "Grid",
        "Conventions": NCEI_CONVENTIONS,
        "ncei_template_version": NCEI_GRID_TEMPLATE,
    }
    # IOOS 1.2: measurements name a platform variable, which a grid has no other use for.
    platform_name = (attrs or {}).get("platform_name") or ds.attrs.get("title", "")
    ds = ds.assign_coords(platform=xr.Variable((), np.int8(0), {"long_name": str(platform_name)}))
    for name in ds.data_vars:
        ds[name].attrs["platform"] = "platform"
    for name, var in ds.variables.items():
        if name in ds.coords:
            var.encoding["_FillValue"] = None
            var.attrs.pop("_FillValue", None)
        if var.dtype.kind == "M":
            var.encoding.update(units=TIME_UNITS, dtype="float64", calendar="standard")
    return finish(ds, attrs or {})


#: Global attributes of a source's grid that describe the source's file, not a subset.
_STALE_GLOBALS = (
    "geospatial_",
    "time_coverage_",
    "Northernmost",
    "Southernmost",
    "Easternmost",
    "Westernmost",
    "date_",
    "Conventions",
    "ncei_template",
    "featureType",
)
