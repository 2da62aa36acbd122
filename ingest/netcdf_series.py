"""CF discrete-sampling-geometry time series in NetCDF (featureType timeSeries) to source rows.

What providers send when they send NetCDF: ERDDAP's `.ncCF` (a contiguous ragged array:
`rowSize` with `sample_dimension`), the orthogonal (station, time) layout, or one station's
variables along time alone. Stations come from the `cf_role: timeseries_id` variable;
position from the `latitude`/`longitude` standard names; z from `depth` (down) or
`altitude`/`height` (up). Variables keep their file names (the registry maps them) and
their `units` attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import netCDF4
import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from ingest.base import SOURCE_SCHEMA, source_rows
from lake.errors import ParseError

#: Coordinates and bookkeeping variables that are never values.
_NOT_DATA = {"rowSize", "row_size", "crs", "station_index", "stationIndex"}


def is_netcdf(body: bytes) -> bool:
    """NetCDF-3 (`CDF`) or NetCDF-4/HDF5 bytes."""
    return body[:3] == b"CDF" or body[:4] == b"\x89HDF"


def open_netcdf(body: bytes, *, source: str, url: str, raw_file: str | None) -> xr.Dataset:
    """The file as an xarray dataset in memory; ParseError if it is not readable NetCDF."""
    try:
        nc = netCDF4.Dataset("upload.nc", mode="r", memory=body)
        with xr.open_dataset(xr.backends.NetCDF4DataStore(nc)) as ds:
            return ds.load()
    except Exception as exc:  # netCDF4 and xarray raise many kinds for a broken file
        raise ParseError(
            source=source, url=url, file=raw_file, what=f"not a readable NetCDF file: {exc}"
        ) from None


def parse_timeseries(
    body: bytes,
    *,
    source: str,
    url: str,
    raw_file: str | None,
    station_ids: dict[str, str],
    default_station: str | None,
    variables: list[str] | None = None,
) -> pa.Table:
    """Long source rows from a DSG time-series file.

    `station_ids` maps a station code in the file (lower case) to the lake's station id;
    a file without station codes, or with one the stream does not list, takes
    `default_station` if given (a stream of one station), else it fails naming the code.
    `variables` (the registry's) must all be present; without it every variable on the
    observation dimension with units is read.
    """

    def fail(what: str) -> ParseError:
        return ParseError(source=source, url=url, file=raw_file, what=what)

    ds = open_netcdf(body, source=source, url=url, raw_file=raw_file)
    time = _by_standard_name(ds, "time") or ("time" if "time" in ds.variables else None)
    if time is None or not np.issubdtype(ds[time].dtype, np.datetime64):
        raise fail("no time variable with CF units (standard_name: time)")
    obs_dim = str(ds[time].dims[0]) if ds[time].dims else None
    names = variables or [
        str(n)
        for n, v in ds.data_vars.items()
        if str(n) not in _NOT_DATA and obs_dim in v.dims and v.attrs.get("units")
    ]
    absent = [n for n in names if n not in ds.variables]
    if absent:
        raise fail(
            f"variable {absent[0]!r} is not in the file; it has {sorted(map(str, ds.variables))}"
        )
    if not names:
        raise fail("no data variables with units along time")
    codes = _station_codes(ds)
    station_of = _resolve(ds, codes, station_ids, default_station, fail)
    station_dim = str(ds[codes].dims[0]) if codes and ds[codes].dims else None
    index = _station_index(ds, station_dim, obs_dim)
    lon = _per_station(ds, _by_standard_name(ds, "longitude"))
    if lon is not None:  # 0..360 (ERDDAP's TAO files) to the lake's -180..180
        lon = (lon + 180.0) % 360.0 - 180.0
    lat = _per_station(ds, _by_standard_name(ds, "latitude"))
    z = _z(ds)
    tables = []
    for name in names:
        var = ds[name]
        # NDBC's DODS files hold one station as (time, latitude: 1, longitude: 1)
        single = [d for d in var.dims if d not in (obs_dim, station_dim) and var.sizes[d] == 1]
        var = var.squeeze(single, drop=True) if single else var
        times, values, at = _flatten(ds, var, time, station_dim, index)
        if at is None:  # one station along time
            at = np.zeros(len(values), dtype=int)

        def pick(per_station: np.ndarray | None, at: np.ndarray = at) -> Any:
            return (
                None if per_station is None else per_station[np.minimum(at, len(per_station) - 1)]
            )

        tables.append(
            source_rows(
                station_id=station_of[np.minimum(at, len(station_of) - 1)],
                times=pd.DatetimeIndex(times).tz_localize("UTC"),
                variable=name,
                values=values,
                units=str(var.attrs.get("units", "")),
                z=pick(z),
                lon=pick(lon),
                lat=pick(lat),
            )
        )
    return pa.concat_tables(tables) if tables else SOURCE_SCHEMA.empty_table()


def described_variables(body: bytes, known: Collection[str]) -> dict[str, tuple[str, str]]:
    """Data variables whose `standard_name` is one of `known` (CF names the lake stores):
    name -> (standard_name, units). Empty for bytes that are not readable NetCDF (the parse
    reports that); a variable with a name outside CF needs the registry to map it."""
    try:
        ds = open_netcdf(body, source="", url="", raw_file=None)
    except ParseError:
        return {}
    return {
        str(name): (str(var.attrs["standard_name"]), str(var.attrs.get("units", "")))
        for name, var in ds.data_vars.items()
        if var.attrs.get("standard_name") in known
    }


def _by_standard_name(ds: xr.Dataset, name: str) -> str | None:
    for key, var in ds.variables.items():
        if var.attrs.get("standard_name") == name:
            return str(key)
    return None


def _station_codes(ds: xr.Dataset) -> str | None:
    for key, var in ds.variables.items():
        if var.attrs.get("cf_role") == "timeseries_id":
            return str(key)
    return None


def _resolve(
    ds: xr.Dataset,
    codes: str | None,
    station_ids: dict[str, str],
    default: str | None,
    fail: Callable[[str], ParseError],
) -> np.ndarray:
    """The lake's station id for each station of the file, in file order."""
    if codes is None:
        if default is None:
            raise fail(
                "the file names no station (no variable with cf_role: timeseries_id) and "
                "the stream has several"
            )
        return np.array([default], dtype=object)
    out = []
    for value in np.atleast_1d(ds[codes].values):
        code = (value.decode() if isinstance(value, bytes) else str(value)).strip().lower()
        found = station_ids.get(code)
        if found is None:
            raise fail(f"station {code!r} is not one of the stream's {sorted(station_ids)}")
        out.append(found)
    return np.array(out, dtype=object)


def _station_index(
    ds: xr.Dataset, station_dim: str | None, obs_dim: str | None
) -> np.ndarray | None:
    """For a ragged file, the station of each observation (from rowSize); else None."""
    for var in ds.data_vars.values():
        if var.attrs.get("sample_dimension") == obs_dim and station_dim in var.dims:
            sizes = var.values.astype(int)
            return np.repeat(np.arange(len(sizes)), sizes)
    return None


def _per_station(ds: xr.Dataset, name: str | None) -> np.ndarray | None:
    """A station coordinate (longitude, latitude) as one value per station."""
    if name is None or ds[name].ndim > 1:
        return None
    return np.atleast_1d(ds[name].values.astype("float64"))


def _z(ds: xr.Dataset) -> np.ndarray | None:
    """Each station's z in metres, up positive, from its depth or altitude."""
    for name, sign in (("depth", -1.0), ("altitude", 1.0), ("height", 1.0)):
        key = _by_standard_name(ds, name)
        if key is not None and ds[key].ndim <= 1:
            return np.atleast_1d(ds[key].values.astype("float64")) * sign
    return None


def _flatten(
    ds: xr.Dataset, var: xr.DataArray, time: str, station_dim: str | None, index: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(times, values, station position of each value) whatever the layout."""
    times = ds[time].values
    if index is not None or var.ndim == 1:  # ragged, or one station along time
        at = index if index is not None else None
        return times, var.values.astype("float64"), at
    # orthogonal: (station, time) or (time, station)
    data = var.transpose(station_dim, ds[time].dims[0]).values.astype("float64")
    n_station, n_time = data.shape
    return np.tile(times, n_station), data.ravel(), np.repeat(np.arange(n_station), n_time)
