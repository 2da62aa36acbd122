"""Downloads (`/data`): station data as CF NetCDF, CSV, JSON, Parquet; grid subsets; vector
layers; and the raw responses values came from (provenance).

Grids and vector layers come from `lake.grids` / `lake.layers` when those modules are part of
the build; until then their routes answer 501 with a clear message.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import tempfile
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Response

from lake.erddap.query import parse_time
from lake.errors import NotFound
from lake.serving import RAW_ID, RequestError, ServerContext, check_dataset_id, check_station_id

log = logging.getLogger(__name__)

STATION_FORMATS = {
    "nc": "application/x-netcdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
MAX_DOWNLOAD_ROWS = 5_000_000


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
    ctx: ServerContext,
    dataset_id: str,
    station_id: str | None,
    start: datetime | None,
    end: datetime | None,
    variables: list[str] | None,
    include_flagged: bool,
) -> pa.Table:
    """Long rows of a dataset (optionally one station), subset by time and variable."""
    view = "observations_all" if include_flagged else "observations"
    where, params = ["dataset_id = ?"], [dataset_id]
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
    table = ctx.lake.sql(
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


def router(ctx: ServerContext) -> APIRouter:
    """Routes under /data."""
    api = APIRouter(prefix="/data", tags=["downloads"])

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
            ds = ctx.lake.series(
                dataset_id, station, t0, t1, names, include_flagged=include_flagged
            )
            stream = ctx.stream(dataset_id)
            if stream is not None:
                ds.attrs.update(
                    title=stream.title,
                    summary=stream.summary.strip(),
                    license=stream.license,
                    references=stream.citation,
                    institution=stream.provider.name,
                )
            fd, path = tempfile.mkstemp(suffix=".nc")
            os.close(fd)
            try:
                ds.to_netcdf(path, engine="netcdf4")
                with open(path, "rb") as fh:
                    body = fh.read()
            finally:
                os.unlink(path)
            return Response(body, media_type=STATION_FORMATS["nc"], headers=headers)
        table = station_rows(ctx, dataset_id, station, t0, t1, names, include_flagged)
        buf = io.BytesIO()
        if fmt == "csv":
            pacsv.write_csv(table, buf)
        elif fmt == "parquet":
            pq.write_table(table, buf)
        else:
            rows = table.to_pylist()
            buf.write(json.dumps({"dataset_id": dataset_id, "rows": rows}, default=str).encode())
        return Response(buf.getvalue(), media_type=STATION_FORMATS[fmt], headers=headers)

    @api.get("/raw/{dataset_id}/{raw_id}")
    def raw_response(dataset_id: str, raw_id: str, meta: bool = False) -> Response:
        """The response a value came from, byte for byte (its `raw_id` is in every row)."""
        check_dataset_id(dataset_id)
        if not RAW_ID.match(raw_id):
            raise RequestError(f"raw id {raw_id[:80]!r} is not a sha256 hex digest")
        from ingest.raw import RawZone

        zone = RawZone(ctx.storage)
        try:
            if meta:
                return Response(
                    json.dumps(zone.meta(dataset_id, raw_id)), media_type="application/json"
                )
            info = _raw_meta(zone, dataset_id, raw_id)
            body = zone.get(dataset_id, raw_id)
        except (FileNotFoundError, OSError, NotFound):
            raise NotFound(f"no raw response {raw_id} for dataset {dataset_id!r}") from None
        media = str(info.get("content_type") or "application/octet-stream")
        return Response(body, media_type=media, headers={"X-Source-URL": str(info.get("url", ""))})

    @api.get("/grids/{dataset_id}.nc")
    def grid_subset(dataset_id: str) -> Response:
        """A grid subset as NetCDF, when the grid store (lake.grids) is part of this build."""
        check_dataset_id(dataset_id)
        grids = _optional("lake.grids")
        if grids is None or not hasattr(grids, "subset_netcdf"):
            raise RequestError("grid downloads are not available in this build", status=501)
        return Response(
            grids.subset_netcdf(ctx.storage, dataset_id), media_type="application/x-netcdf"
        )

    @api.get("/layers/{layer_id}.{fmt}")
    def layer_download(layer_id: str, fmt: str) -> Response:
        """A vector layer as GeoJSON or zipped Shapefile, when lake.layers is in this build."""
        check_dataset_id(layer_id)
        if fmt not in ("geojson", "shp.zip", "zip"):
            raise RequestError("vector layers come as .geojson or .shp.zip")
        layers = _optional("lake.layers")
        if layers is None or not hasattr(layers, "export"):
            raise RequestError("vector layer downloads are not available in this build", status=501)
        body = layers.export(ctx.storage, layer_id, "geojson" if fmt == "geojson" else "shapefile")
        media = "application/geo+json" if fmt == "geojson" else "application/zip"
        return Response(body, media_type=media)

    return api


def _raw_meta(zone: Any, dataset_id: str, raw_id: str) -> dict[str, Any]:
    try:
        return dict(zone.meta(dataset_id, raw_id))
    except (FileNotFoundError, OSError):
        return {}


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise
