"""Downloads (`/data`): station data as CF NetCDF, CSV, JSON, Parquet; grid subsets; vector
layers; and the raw responses values came from (provenance).

Grids and vector layers come from `lake.grids` / `lake.layers` when those modules are part of
the build; until then their routes answer 501 with a clear message.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, FastAPI, Response

from coastlake.server.formats import MEDIA_TYPES, offered
from lake.deps import RAW_ID, LakeDeps, check_dataset_id, check_station_id
from lake.errors import NotFound, RequestError
from lake.grids import open_grid
from lake.layers import read_layer, to_geojson, to_shapefile_zip
from lake.netcdf import acdd_attrs, dataset_to_netcdf_bytes, grid_dataset
from lake.raw import RawZone
from lake.station_files import station_dataset
from lake.times import parse_time

log = logging.getLogger(__name__)

STATION_FORMATS = offered("nc", "csv", "json", "parquet")
LAYER_FORMATS = offered("geojson", "shp.zip")
MAX_DOWNLOAD_ROWS = 5_000_000
MAX_GRID_BYTES = 500_000_000


def _window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    t0 = parse_time(start, "start") if start else None
    t1 = parse_time(end, "end") if end else None
    if t0 and t1 and t1 < t0:
        raise RequestError(f"end {end!r} is before start {start!r}")
    return t0, t1


def _variables(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    names = [v.strip() for v in raw.split(",") if v.strip()]
    for name in names:
        if not name.replace("_", "").isalnum():
            raise RequestError(f"variable {name[:60]!r} is not a CF standard name")
    return names


def station_rows(
    ctx: LakeDeps,
    dataset_id: str,
    station_id: str | None,
    start: datetime | None,
    end: datetime | None,
    variables: list[str] | None,
    include_flagged: bool,
) -> pa.Table:
    """Long rows of a dataset (optionally one station), subset by time and variable."""
    view = "observations_all" if include_flagged else "observations"
    where: list[str] = ["dataset_id = ?"]
    params: list[Any] = [dataset_id]
    if station_id:
        where.append("station_id = ?")
        params.append(station_id)
    if start:
        where.append("time >= ?")
        params.append(start)
    if end:
        where.append("time <= ?")
        params.append(end)
    if variables:
        where.append("list_contains(?, variable)")
        params.append(variables)
    table = ctx.sql(
        "SELECT dataset_id, station_id, time, z, lon, lat, variable, value, units, qc_agg, "
        "provider_flag, raw_id FROM "
        f"{view} WHERE {' AND '.join(where)} ORDER BY station_id, variable, time "
        f"LIMIT {MAX_DOWNLOAD_ROWS + 1}",
        params,
    )
    if table.num_rows > MAX_DOWNLOAD_ROWS:
        raise RequestError(
            f"more than {MAX_DOWNLOAD_ROWS:,} values; narrow the time window", status=413
        )
    if table.num_rows == 0:
        raise NotFound(f"no observations for dataset {dataset_id!r} in that selection")
    return table


def router(ctx: LakeDeps) -> APIRouter:
    """Routes under /data."""
    api = APIRouter(prefix="/data", tags=["downloads"])
    _station_routes(api, ctx)
    _raw_routes(api, ctx)
    _grid_routes(api, ctx)
    _layer_routes(api, ctx)
    return api


def _station_routes(api: APIRouter, ctx: LakeDeps) -> None:
    @api.get("/stations/{dataset_id}.{fmt}")
    def station_download(
        dataset_id: str,
        fmt: str,
        station: str | None = None,
        start: str | None = None,
        end: str | None = None,
        variables: str | None = None,
        include_flagged: bool = False,
    ) -> Response:
        """A dataset's station data (one station with `station=`), by time and variable."""
        check_dataset_id(dataset_id)
        if fmt not in STATION_FORMATS:
            raise RequestError(f"format .{fmt[:20]} not offered; use {', '.join(STATION_FORMATS)}")
        if station:
            check_station_id(station)
        t0, t1 = _window(start, end)
        names = _variables(variables)
        filename = f"{dataset_id}{'_' + station.rsplit(':', 1)[-1] if station else ''}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if fmt == "nc":
            if not station:
                raise RequestError("NetCDF downloads are per station: add station=<station id>")
            body = station_netcdf(ctx, dataset_id, station, t0, t1, names, include_flagged)
        else:
            table = station_rows(ctx, dataset_id, station, t0, t1, names, include_flagged)
            body = encode_rows(table, fmt, dataset_id)
        return Response(body, media_type=STATION_FORMATS[fmt], headers=headers)


def station_netcdf(
    ctx: LakeDeps,
    dataset_id: str,
    station_id: str,
    start: datetime | None,
    end: datetime | None,
    variables: list[str] | None,
    include_flagged: bool,
) -> bytes:
    """One station's series as a single-station CF timeSeries file (NCEI's template), with
    every QARTOD flag and the provider's flags, described by its stream."""
    ds = station_dataset(
        ctx.lake,
        dataset_id,
        station_id,
        start,
        end,
        variables,
        stream=ctx.stream(dataset_id),
        include_flagged=include_flagged,
    )
    return dataset_to_netcdf_bytes(ds)


def encode_rows(table: pa.Table, fmt: str, dataset_id: str) -> bytes:
    """Long rows as csv, parquet or json (`{"dataset_id", "rows"}`)."""
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buf)
    elif fmt == "parquet":
        pq.write_table(table, buf)
    else:
        rows = table.to_pylist()
        buf.write(json.dumps({"dataset_id": dataset_id, "rows": rows}, default=str).encode())
    return buf.getvalue()


def _raw_routes(api: APIRouter, ctx: LakeDeps) -> None:
    @api.get("/raw/{dataset_id}/{raw_id}")
    def raw_response(dataset_id: str, raw_id: str, meta: bool = False) -> Response:
        """The response a value came from, byte for byte (its `raw_id` is in every row)."""
        check_dataset_id(dataset_id)
        if not RAW_ID.match(raw_id):
            raise RequestError(f"raw id {raw_id[:80]!r} is not a sha256 hex digest")
        zone = RawZone(ctx.storage)
        try:
            if meta:
                return Response(
                    json.dumps(zone.meta(dataset_id, raw_id)), media_type=MEDIA_TYPES["json"]
                )
            info = _raw_meta(zone, dataset_id, raw_id)
            body = zone.get(dataset_id, raw_id)
        except (FileNotFoundError, OSError, NotFound):
            raise NotFound(f"no raw response {raw_id} for dataset {dataset_id!r}") from None
        media = str(info.get("content_type") or "application/octet-stream")
        return Response(body, media_type=media, headers={"X-Source-URL": str(info.get("url", ""))})


def _grid_routes(api: APIRouter, ctx: LakeDeps) -> None:
    @api.get("/grids/{dataset_id}.nc")
    def grid_subset(
        dataset_id: str,
        variables: str | None = None,
        bbox: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> Response:
        """A grid subset (variables, lon/lat box `minlon,minlat,maxlon,maxlat`, time) as NetCDF."""
        check_dataset_id(dataset_id)
        ds = open_grid(ctx.storage, dataset_id)
        stream = ctx.stream(dataset_id)
        attrs = acdd_attrs(stream) if stream is not None else {"id": dataset_id}
        body = grid_netcdf(ds, _variables(variables), _bbox(bbox), *_window(start, end), attrs)
        headers = {"Content-Disposition": f'attachment; filename="{dataset_id}_subset.nc"'}
        return Response(body, media_type=MEDIA_TYPES["nc"], headers=headers)


def _layer_routes(api: APIRouter, ctx: LakeDeps) -> None:
    @api.get("/layers/{name}")
    def layer_download(name: str, bbox: str | None = None) -> Response:
        """A vector layer as GeoJSON (`<id>.geojson`) or a zipped Shapefile (`<id>.shp.zip`)."""
        for fmt in LAYER_FORMATS:
            if name.endswith(f".{fmt}"):
                layer_id = check_dataset_id(name[: -len(fmt) - 1])
                break
        else:
            raise RequestError("vector layers come as <layer>.geojson or <layer>.shp.zip")
        gdf = read_layer(ctx.storage, layer_id, bbox=_bbox(bbox))
        if fmt == "geojson":
            body = json.dumps(to_geojson(gdf)).encode()
            return Response(body, media_type=LAYER_FORMATS[fmt])
        headers = {"Content-Disposition": f'attachment; filename="{layer_id}.shp.zip"'}
        return Response(
            to_shapefile_zip(gdf, layer_id), media_type=LAYER_FORMATS[fmt], headers=headers
        )


def _bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    try:
        west, south, east, north = (float(v) for v in raw.split(","))
    except ValueError:
        raise RequestError(f"bbox {raw[:60]!r} must be minlon,minlat,maxlon,maxlat") from None
    if south > north or not (-90 <= south <= 90 and -90 <= north <= 90):
        raise RequestError(f"bbox {raw[:60]!r}: latitudes must be -90..90, south first")
    return west, south, east, north


def _coord_name(ds: Any, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in ds.coords), None)


def grid_netcdf(
    ds: Any,
    variables: list[str] | None,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
    attrs: dict[str, str] | None = None,
) -> bytes:
    """Subset a grid (xarray Dataset) and write it as NetCDF-4; 413 if the subset is huge.

    Its coverage and ranges are computed from the subset (`lake.netcdf.grid_dataset`)."""
    if variables:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise RequestError(
                f"grid has no variable {missing[0]!r}; it has: {', '.join(map(str, ds.data_vars))}"
            )
        ds = ds[variables]
    if bbox is not None:
        lon = _coord_name(ds, ("lon", "longitude", "x"))
        lat = _coord_name(ds, ("lat", "latitude", "y"))
        if lon is None or lat is None or ds[lon].ndim != 1 or ds[lat].ndim != 1:
            raise RequestError("this grid has no 1-D lon/lat axes to cut a bbox from")
        west, south, east, north = bbox
        if float(ds[lon].max()) > 180 and west < 0:
            west, east = west % 360, east % 360
        lats = ds[lat].values
        lat_slice = slice(south, north) if lats[0] <= lats[-1] else slice(north, south)
        ds = ds.sel({lon: slice(west, east), lat: lat_slice})
    if (start or end) and "time" in ds.coords:
        ds = ds.sel(time=slice(start, end))
    if ds.nbytes > MAX_GRID_BYTES:
        raise RequestError(
            f"the subset holds {ds.nbytes / 1e6:,.0f} MB, over the limit of "
            f"{MAX_GRID_BYTES / 1e6:,.0f} MB (narrow the box, the time window or the variables)",
            status=413,
        )
    return dataset_to_netcdf_bytes(grid_dataset(ds.load(), attrs))


def _raw_meta(zone: Any, dataset_id: str, raw_id: str) -> dict[str, Any]:
    try:
        return dict(zone.meta(dataset_id, raw_id))
    except (FileNotFoundError, OSError):
        return {}


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add the /data download routes to `app`."""
    app.include_router(router(deps))
