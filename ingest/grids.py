"""Grid sources into the lake: NetCDF files (file:// or HTTP), OPeNDAP/THREDDS and ERDDAP griddap.

Every source becomes the same thing before it is written: an `xr.Dataset` on a regular
latitude/longitude grid with CF attributes kept, longitudes in −180…180 (sorted), latitudes
ascending, times decoded as UTC, singleton levels (altitude 0, lev 0) turned into scalar
coordinates, and only the variables that lie on the grid. HF-radar u/v also give speed and
direction. Grids we cannot serve (curvilinear ROMS, unstructured FVCOM) are refused with a
message naming the dataset and what is missing, before anything is written.

Source kinds (`source.kind` in the registry):
- `netcdf`: `url` is a .nc file (or a folder/base URL with `files: [...]`).
- `opendap`: `url` is an OPeNDAP endpoint (a THREDDS `dodsC` URL); read lazily, subset by
  `bbox: [w, s, e, n]` and `time: [start, end]` if given.
- `griddap`: `url` is an ERDDAP base, `dataset` the griddap id, `variables`, `time`, `bbox`
  build the `.nc` query; a `file://` base serves the recorded response at `file`.
- `thredds`: `url` is a THREDDS `catalog.xml`; its datasets (`match`, `latest`) are read
  through the catalog's OPeNDAP service, one commit each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import dask
import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from ingest.base import Request
from ingest.decoded import check_decoded_size
from ingest.fetch import FetchPolicy, fetch
from ingest.grid_roms import is_roms, regrid_roms
from ingest.grid_sources import GRID_KINDS, GridSource, grid_source_kinds, griddap_url, source_urls
from ingest.grid_thredds import opendap_urls
from lake.cluster import describe, job_client, map_tasks
from lake.errors import ParseError
from lake.grids import GridStore
from lake.raw import RawZone
from lake.registry import Category, Stream
from lake.storage import Storage

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

#: Sources asked only for the steps after the newest stored one when polled.
POLLED_KINDS = ("griddap", "opendap", "thredds")
LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")
EASTWARD = ("surface_eastward_sea_water_velocity", "eastward_sea_water_velocity")
NORTHWARD = ("surface_northward_sea_water_velocity", "northward_sea_water_velocity")


@dataclass(frozen=True)
class GridIngestResult:
    """What one grid ingest did, for the CLI and the harvest log."""

    stream_id: str
    sources: list[str]
    times_added: int
    snapshot: str
    run: str | None = None


# -- opening sources ---------------------------------------------------------------------------
def _open_bytes(stream_id: str, url: str, body: bytes) -> xr.Dataset:
    """Open NetCDF-3 or NetCDF-4 bytes; a file that is neither fails the syntax test."""
    if body[:3] != b"CDF" and body[:4] != b"\x89HDF":
        head = body[:60].decode("latin-1", "replace").strip()
        raise ParseError(source=stream_id, url=url, what=f"not a NetCDF file (starts {head!r})")
    try:
        nc = netCDF4.Dataset(_name(url) or "source.nc", mode="r", memory=body)
        with xr.open_dataset(xr.backends.NetCDF4DataStore(nc)) as ds:
            return check_decoded_size(ds, source=stream_id, url=url).load()
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            source=stream_id, url=url, what=f"not a readable NetCDF file: {exc}"
        ) from exc


def open_source(
    storage: Storage, stream: Stream, url: str, client: Any | None = None
) -> tuple[xr.Dataset, str | None]:
    """Read one source into memory; returns the dataset and the raw id kept for provenance.

    Files and HTTP responses go through the raw zone (kept by content hash, unless the
    stream's retention says not to keep raw); OPeNDAP is read lazily, subset first.
    """
    if stream.source.kind in ("opendap", "thredds"):
        try:
            ds = xr.open_dataset(url)
        except Exception as exc:
            raise ParseError(source=stream.id, url=url, what=f"cannot open OPeNDAP: {exc}") from exc
        part = subset(ds, stream.source.params)
        return check_decoded_size(part, source=stream.id, url=url).load(), None
    policy = FetchPolicy().for_stream(stream)
    raw = fetch(
        stream.id,
        Request(url=url, label=Path(urlparse(url).path).name),
        policy=policy,
        client=client,
    )
    if raw is None:  # pragma: no cover - no validators are sent
        raise ParseError(source=stream.id, url=url, what="source answered 304 with no body")
    raw_id = None
    if stream.retention.keep_raw:
        raw_id = RawZone(storage).put(raw)
    return _open_bytes(stream.id, url, raw.body), raw_id


def catalog_urls(
    stream: Stream,
    catalog_url: str,
    client: Any | None = None,
    ingested: set[str] | None = None,
) -> list[str]:
    """The OPeNDAP URLs a THREDDS catalog lists for a `thredds` stream.

    Once some were ingested (`ingested`: their names), the catalog's datasets from the
    last of those on are read, however many appeared since (`latest` limits only the
    first ingest), so files published while polls were missed are not skipped.
    """
    raw = fetch(stream.id, Request(url=catalog_url, label="catalog"), client=client)
    if raw is None:  # pragma: no cover - no validators are sent
        raise ParseError(source=stream.id, url=catalog_url, what="catalog answered 304")
    p = stream.source.params
    if ingested:
        every = opendap_urls(stream.id, catalog_url, raw.body, p.get("match"))
        seen = [i for i, url in enumerate(every) if _name(url) in ingested]
        if seen:
            return every[seen[-1] :]
    return opendap_urls(stream.id, catalog_url, raw.body, p.get("match"), p.get("latest"))


def _ingested_names(store: GridStore) -> set[str]:
    """Names of the source files already appended (the commits say `ingest <name>`)."""
    if not store.exists():
        return set()
    return {
        str(c["message"]).removeprefix("ingest ")
        for c in store.history()
        if str(c["message"]).startswith("ingest ")
    }


def poll_window(
    stream: Stream, store: GridStore, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The time window to read: a backfill's own; for a poll of a griddap, OPeNDAP or
    THREDDS stream that already has steps, from the newest stored step on (ERDDAP answers
    with that step and every later one; the append keeps only the new ones). Model runs
    and plain files are read whole."""
    if since is not None or until is not None:
        return since, until
    if stream.category is Category.model or stream.source.kind not in POLLED_KINDS:
        return None, None
    if not store.exists():
        return None, None
    newest = store.info().time_end
    return (newest, None) if newest is not None else (None, None)


def in_time_window(ds: xr.Dataset, start: datetime | None, end: datetime | None) -> xr.Dataset:
    """The steps of `ds` inside [start, end] (all of them when neither is given)."""
    if "time" not in ds.dims or (start is None and end is None):
        return ds
    times = pd.DatetimeIndex(ds["time"].values)
    keep = np.ones(len(times), dtype=bool)
    if start is not None:
        keep &= times >= _naive_utc(start)
    if end is not None:
        keep &= times <= _naive_utc(end)
    return ds.isel(time=np.flatnonzero(keep))


def _naive_utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def subset(ds: xr.Dataset, params: dict[str, Any]) -> xr.Dataset:
    """Cut to `bbox: [w, s, e, n]` (degrees east −180…180) and `time: [start, end]`."""
    if params.get("time") and "time" in ds.dims:
        t0, t1 = params["time"][:2]
        ds = ds.sel(time=slice(pd.Timestamp(t0), pd.Timestamp(t1)))
    if params.get("bbox"):
        w, s, e, n = params["bbox"]
        lat = next((n_ for n_ in LAT_NAMES if n_ in ds.dims), None)
        lon = next((n_ for n_ in LON_NAMES if n_ in ds.dims), None)
        if lat and lon:
            lats = ds[lat].values
            ds = ds.sel({lat: slice(s, n) if lats[0] <= lats[-1] else slice(n, s)})
            lons = ds[lon].values
            if lons.max() > 180 and w < 0:
                w, e = w % 360, e % 360
            ds = ds.sel({lon: slice(w, e)})
    return ds


# -- normalizing --------------------------------------------------------------------------------
def check_servable(stream_id: str, ds: xr.Dataset, url: str = "") -> None:
    """Refuse grids the lake cannot map or tile, naming what is missing."""
    has_lat = any(n in ds.dims for n in LAT_NAMES)
    has_lon = any(n in ds.dims for n in LON_NAMES)
    if has_lat and has_lon:
        return
    two_d = [str(n) for n, c in ds.coords.items() if c.ndim == 2 and "lat" in str(n).lower()]
    two_d += [str(n) for n, v in ds.data_vars.items() if v.ndim == 2 and str(n).startswith("lat")]
    if two_d:
        raise ParseError(
            source=stream_id,
            url=url or None,
            what=(
                "curvilinear model grid: latitude/longitude are 2-D "
                f"({', '.join(sorted(set(two_d)))}) and there are no 1-D latitude/longitude "
                "dimensions; the lake serves regular lat/lon grids only. Regrid it "
                "to a regular grid first (for ROMS files set `source.regrid: true`; or use "
                "xESMF or the provider's regular product)"
            ),
        )
    mesh = [d for d in ds.dims if str(d) in ("node", "nele", "elem", "face", "nMesh2_face")]
    if mesh:
        raise ParseError(
            source=stream_id,
            url=url or None,
            what=(
                f"unstructured mesh (dims {', '.join(map(str, mesh))}): values sit on "
                "triangle nodes/elements, with no latitude/longitude grid dimensions; "
                "the lake serves regular lat/lon grids only"
            ),
        )
    raise ParseError(
        source=stream_id,
        url=url or None,
        what=f"no latitude/longitude dimensions (dims: {', '.join(map(str, ds.dims))})",
    )


def normalize(stream: Stream, ds: xr.Dataset, url: str = "") -> xr.Dataset:
    """The grid as the lake stores it (see the module docstring); raises ParseError."""
    if stream.source.params.get("regrid") and is_roms(ds):
        ds = regrid_roms(stream.id, ds, url)
    check_servable(stream.id, ds, url)
    lat = next(n for n in LAT_NAMES if n in ds.dims)
    lon = next(n for n in LON_NAMES if n in ds.dims)
    time = next((str(d) for d in ds.dims if str(d) in ("time", "ocean_time", "t")), None)
    if time and time != "time":
        ds = ds.rename({time: "time"})
        time = "time"
    wanted = {v.source for v in stream.variables}
    keep = [
        n
        for n, v in ds.data_vars.items()
        if lat in v.dims and lon in v.dims and (not wanted or n in wanted)
    ]
    if not keep:
        raise ParseError(
            source=stream.id,
            url=url or None,
            what=f"no variables on the {lat}/{lon} grid"
            + (f" among {sorted(wanted)}" if wanted else ""),
        )
    ds = ds[keep]
    for dim in list(ds.dims):
        if dim not in (lat, lon, "time") and ds.sizes[dim] == 1:
            ds = ds.squeeze(dim, drop=dim not in ds.coords)
    ds = ds.drop_vars([c for c in ds.coords if ds[c].ndim > 1 and c not in ds.dims])
    for var in stream.variables:  # the curated registry wins over the file's attributes
        if var.source in ds:
            ds[var.source].attrs.update(standard_name=var.standard_name, units=var.units)
    for name in ds.variables:  # references to variables that were left out
        for ref in ("bounds", "grid_mapping"):
            for holder in (ds[name].attrs, ds[name].encoding):
                target = holder.get(ref)
                if target and target not in ds.variables:
                    del holder[ref]
    attrs = dict(ds[lon].attrs)
    lons = ds[lon].values.astype("float64")
    if np.nanmax(lons) > 180:
        ds = ds.assign_coords({lon: ((lons + 180.0) % 360.0) - 180.0})
    ds = ds.sortby([lat, lon])
    ds[lon].attrs.update({**attrs, "units": "degrees_east", "standard_name": "longitude"})
    ds[lat].attrs.update(units="degrees_north", standard_name="latitude")
    if time:
        if not np.issubdtype(ds["time"].dtype, np.datetime64):
            raise ParseError(
                source=stream.id, url=url or None, what="time could not be decoded as dates"
            )
        ds = ds.sortby("time")
        ds["time"].attrs.update(standard_name="time", axis="T")
        ds["time"].encoding = {"units": "seconds since 1970-01-01", "calendar": "standard"}
    ds = add_speed_direction(ds)
    ds.attrs = {**ds.attrs, "coastlake_dataset_id": stream.id}
    return ds


def add_speed_direction(ds: xr.Dataset) -> xr.Dataset:
    """For eastward/northward currents, add `speed` and `direction` (toward, degrees true)."""
    u = next((n for n, v in ds.data_vars.items() if v.attrs.get("standard_name") in EASTWARD), None)
    v = next(
        (n for n, x in ds.data_vars.items() if x.attrs.get("standard_name") in NORTHWARD), None
    )
    if u is None or v is None:
        return ds
    units = ds[u].attrs.get("units", "m s-1")
    ds = ds.copy()
    ds["speed"] = np.hypot(ds[u], ds[v]).astype(ds[u].dtype)
    ds["speed"].attrs = {
        "standard_name": "sea_water_speed",
        "long_name": "surface current speed",
        "units": units,
    }
    direction = (np.degrees(np.arctan2(ds[u], ds[v])) + 360.0) % 360.0
    ds["direction"] = direction.astype(ds[u].dtype)
    ds["direction"].attrs = {
        "standard_name": "direction_of_sea_water_velocity",
        "long_name": "surface current direction (toward, clockwise from true north)",
        "units": "degree",
    }
    return ds


def reference_time(stream: Stream, ds: xr.Dataset) -> datetime:
    """A model run's reference time: registry, CF variable/attribute, or the first time."""
    p = stream.source.params
    if p.get("reference_time"):
        return pd.Timestamp(p["reference_time"]).tz_localize(None).to_pydatetime()
    if "forecast_reference_time" in ds.variables:
        return pd.Timestamp(ds["forecast_reference_time"].values.ravel()[0]).to_pydatetime()
    for key in ("forecast_reference_time", "date_created"):
        if key in ds.attrs:
            return pd.Timestamp(ds.attrs[key]).tz_localize(None).to_pydatetime()
    return pd.Timestamp(ds["time"].values.min()).to_pydatetime()


# -- the ingest ---------------------------------------------------------------------------------
def prepare_grid_source(
    url: str,
    storage: Storage,
    stream: Stream,
    start: datetime | None,
    end: datetime | None,
    client: Any | None = None,
) -> xr.Dataset:
    """One source read, cut to the window and normalized, in memory (a task on a worker when
    the ingest runs on a cluster: fetching, decoding and regridding are the heavy part).

    Writes nothing but the raw zone's copy, which is kept by content hash: a task run again
    stores the same object once."""
    ds, raw_id = open_source(storage, stream, url, client)
    ds = normalize(stream, in_time_window(ds, start, end), url)
    if raw_id:
        ds.attrs["coastlake_raw_id"] = raw_id
    return ds


def ingest_grid(
    storage: Storage,
    stream: Stream,
    client: Any | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cluster: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> GridIngestResult:
    """Read a grid stream's sources and write them to its Icechunk repository.

    Satellite and radar grids are appended along time, one commit per source file; a
    model stream (category `model`) stores each file as a run and rebuilds the best
    estimate, dropping superseded runs unless `retention.superseded_runs`. Every source is
    read and checked before the first write, so a bad file changes nothing.

    `since`/`until` keep the time steps of a window (a griddap request asks for it). A
    poll without them asks griddap, OPeNDAP and THREDDS sources for every step after the
    newest stored one, so a missed poll is filled by the next (`poll_window`).

    With a Dask `cluster` (or a `scheduler` address, or `workers` for a local cluster), the
    sources are read and normalized on the workers, one task per source file, and written
    here in the same order and commits as without. Without any of them the ingest runs in
    this process: a poll reads a file or two, which a cluster would only slow down (the
    harvest calls this for every poll), so LAKE_DASK_SCHEDULER is applied by `lake grid
    ingest`, not here.
    """
    store = GridStore(storage, stream.id)
    start, end = poll_window(stream, store, since, until)
    urls = source_urls(stream, start, end)
    if stream.source.kind == "thredds":
        urls = catalog_urls(stream, urls[0], client, _ingested_names(store))
    if cluster is None and scheduler is None and workers is None:
        datasets = [prepare_grid_source(u, storage, stream, start, end, client) for u in urls]
        return _write_prepared(stream, store, urls, list(zip(urls, datasets, strict=True)))
    with job_client(cluster, scheduler, workers) as on:
        assert on is not None  # job_client gives None only to jobs that ask for in_process
        log.info(
            "stream=%s: sending %d grid source files to %s", stream.id, len(urls), describe(on)
        )
        futures = map_tasks(
            on,
            prepare_grid_source,
            urls,
            storage,
            stream,
            start,
            end,
            what=f"stream={stream.id}: grid sources read",
        )
        skeletons = on.gather(on.map(grid_skeleton, futures, pure=False))  # type: ignore[no-untyped-call]
        prepared = [
            (url, lazy_grid(future, skeleton))
            for url, future, skeleton in zip(urls, futures, skeletons, strict=True)
        ]
        return _write_prepared(stream, store, urls, prepared, on)


# -- on a cluster: the grids stay on the workers ---------------------------------------------
#: A dataset's coordinates and attributes (with their encodings), and per data variable its
#: dims, shape, dtype, attributes and encoding: everything but the values.
Skeleton = tuple[
    xr.Dataset,
    dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, dict[str, Any], dict[str, Any]]],
]


def grid_skeleton(ds: xr.Dataset) -> Skeleton:
    """What the client needs of a grid held on a worker to plan its write (a small task)."""
    variables = {
        str(name): (
            tuple(str(d) for d in var.dims),
            tuple(var.shape),
            var.dtype,
            dict(var.attrs),
            dict(var.encoding),
        )
        for name, var in ds.data_vars.items()
    }
    return ds.drop_vars(list(ds.data_vars)), variables


def _values_of(ds: xr.Dataset, name: str) -> Any:
    return ds[name].values


def lazy_grid(future: Any, skeleton: Skeleton) -> xr.Dataset:
    """The grid a worker holds (`future`) as a Dask-backed dataset: writing it makes the
    workers read their own memory and write the chunks, the values never pass through here."""
    import dask.array as da

    coords, variables = skeleton
    data = {}
    for name, (dims, shape, dtype, attrs, enc) in variables.items():
        values = da.from_delayed(
            dask.delayed(_values_of, pure=True)(future, name), shape=shape, dtype=dtype
        )
        var = xr.Variable(dims, values, attrs)
        var.encoding = enc
        data[name] = var
    return xr.Dataset(data, coords=coords.coords, attrs=coords.attrs)


def _write_prepared(
    stream: Stream,
    store: GridStore,
    urls: list[str],
    prepared: list[tuple[str, xr.Dataset]],
    cluster: Client | None = None,
) -> GridIngestResult:
    """Commit the prepared sources in order, one commit each.

    With a `cluster`, an append to an existing grid is written by the workers that hold the
    data (Icechunk's distributed write, `GridStore.append`); a grid's first write and a
    model run are brought here first and written on threads: they go through writers that
    hand Dask the session's store, which must not travel to other processes.
    """
    added = 0
    snap = ""
    run_key = None
    for url, ds in prepared:
        if "time" in ds.dims and ds.sizes["time"] == 0:
            log.info("stream=%s %s: no time steps in the window", stream.id, _name(url))
            continue
        before = store.info().times if store.exists() else 0
        appending = "time" in ds.dims and stream.category is not Category.model and before > 0
        if cluster is not None and appending:
            with dask.config.set(scheduler=cluster):
                snap = store.append(ds, f"ingest {_name(url)}")
            added += max(0, store.info().times - before)
            continue
        if cluster is not None:
            ds = ds.compute(scheduler=cluster)
        with dask.config.set(scheduler="threads"):
            if stream.category is Category.model and "time" in ds.dims:
                ref = reference_time(stream, ds)
                run_key = ref.strftime("%Y%m%dT%H%M%SZ")
                snap = store.add_run(ds, ref, keep_superseded=stream.retention.superseded_runs)
            elif "time" in ds.dims:
                snap = store.append(ds, f"ingest {_name(url)}")
            else:
                snap = store.write(ds, f"ingest {_name(url)}")
        added += max(0, store.info().times - before)
    log.info("stream=%s grid ingest: %d sources, %d new times", stream.id, len(urls), added)
    return GridIngestResult(stream.id, urls, added, snap, run_key)


def _name(url: str) -> str:
    return Path(unquote(urlparse(url).path)).name or url


def open_local(path: str | Path) -> xr.Dataset:
    """Open a NetCDF file by path (tests and benchmarks compare the lake with the source)."""
    return xr.open_dataset(path)


__all__ = [
    "GRID_KINDS",
    "GridIngestResult",
    "GridSource",
    "add_speed_direction",
    "check_servable",
    "grid_source_kinds",
    "griddap_url",
    "ingest_grid",
    "normalize",
    "open_source",
    "prepare_grid_source",
    "source_urls",
]
