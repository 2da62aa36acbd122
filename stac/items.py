"""STAC Items, one per thing a reader can open: a station's time series, a grid (and each
model run kept), a GIS layer.

Every item has the same shape: a geometry and bbox from the data, the dataset's fields
(`stac.describe`), its files in the lake and the same data through the server
(`stac.assets`). Only what differs between kinds is written here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pystac
from pystac.extensions.datacube import DatacubeExtension
from pystac.extensions.xarray_assets import XarrayAssetsExtension

from lake.registry import Stream
from lake.storage import Storage
from stac.assets import (
    PARQUET,
    ZARR,
    add_table_asset,
    asset,
    measured,
    observation_columns,
    opendap_asset,
    server_asset,
)
from stac.describe import (
    CF_EXTENSION,
    EPOCH,
    cf_parameter,
    ioos_fields,
    keywords,
    license_fields,
    providers,
    utc,
)
from stac.extents import GridExtent, LayerExtent, StationExtent

XARRAY_EXTENSION = XarrayAssetsExtension.get_schema_uri()


def station_item_id(station_id: str) -> str:
    """Item id of a station: the IOOS URN's authority and label ('wmo-44013')."""
    parts = station_id.split(":")
    if len(parts) >= 5 and parts[0] == "urn":
        return f"{parts[3]}-{':'.join(parts[4:])}".replace(":", "-")
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", station_id)


def box(bbox: list[float]) -> dict[str, Any]:
    """The GeoJSON polygon of a bbox (west, south, east, north), closed, counter-clockwise."""
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _item(
    stream: Stream,
    item_id: str,
    geometry: dict[str, Any],
    bbox: list[float],
    properties: dict[str, Any],
    *,
    when: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pystac.Item:
    """An item of `stream`'s collection: at one time (`when`) or over `start`..`end`.
    Declares the CF extension exactly when the item lists CF parameters."""
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=bbox,
        datetime=when,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
        collection=stream.id,
    )
    if "cf:parameter" in properties:
        item.stac_extensions.append(CF_EXTENSION)
    return item


def station_item(stream: Stream, st: StationExtent, storage: Storage) -> pystac.Item:
    """A station's time series: its rows of the observations table, and tabledap CSV."""
    params = list(st.parameters)
    item = _item(
        stream,
        station_item_id(st.station_id),
        {"type": "Point", "coordinates": [st.lon, st.lat]},
        [st.lon, st.lat, st.lon, st.lat],
        {
            "title": f"{st.name or st.station_id} ({stream.title})",
            "description": f"Time series at station {st.station_id} from {stream.provider.name}.",
            "keywords": keywords(stream, params),
            "platform": st.platform or "fixed station",
            "providers": [p.to_dict() for p in providers(stream)],
            "license": license_fields(stream.license)[0],
            "cf:parameter": cf_parameter(params),
            "ioos:station_urn": st.station_id,
            "ioos:wmo_id": st.wmo_id,
            "ioos:platform": st.platform,
            **ioos_fields(stream),
            "coastlake:rows": st.rows,
            "coastlake:z_range_m": [st.z_min, st.z_max],
            "coastlake:provider_metadata": st.attributes,
        },
        start=utc(st.start),
        end=utc(st.end),
    )
    observations = asset(
        storage.url("tables", "observations"),
        PARQUET,
        "Observations (Delta Lake table of Parquet files)",
        description=(
            f"Long rows; select dataset_id = '{stream.id}' AND station_id = '{st.station_id}'. "
            "Read with deltalake, DuckDB delta_scan or dask-deltatable."
        ),
        extra_fields={
            "coastlake:filter": {"dataset_id": stream.id, "station_id": st.station_id},
            **measured(params),
        },
    )
    add_table_asset(item, "observations", observations, observation_columns())
    item.add_asset(
        "csv",
        server_asset(
            f"/erddap/tabledap/{stream.id}.csv",
            "text/csv",
            "ERDDAP-style tabledap CSV",
            extra_fields=measured(params),
        ),
    )
    return item


def grid_item(stream: Stream, grid: GridExtent) -> pystac.Item:
    """A grid or one model run: its Icechunk repository, datacube fields, and map tiles."""
    start = grid.start or EPOCH
    item = _item(
        stream,
        grid.item_id,
        box(grid.bbox),
        grid.bbox,
        {
            "title": grid.title or stream.title,
            "description": stream.summary or stream.title,
            "keywords": keywords(stream, grid.parameters),
            "providers": [p.to_dict() for p in providers(stream)],
            "license": license_fields(stream.license)[0],
            "cf:parameter": cf_parameter(grid.parameters),
            **ioos_fields(stream),
            "coastlake:provider_metadata": grid.attributes,
        },
        start=utc(start),
        end=utc(grid.end or start),
    )
    DatacubeExtension.ext(item, add_if_missing=True)
    item.properties["cube:dimensions"] = grid.dims
    item.properties["cube:variables"] = grid.variables
    item.add_asset(
        "zarr",
        asset(
            grid.url,
            ZARR,
            "Icechunk repository of Zarr v3 (branch main)",
            extra_fields={
                "coastlake:open": "icechunk.Repository.open(...).readonly_session('main').store",
                **measured(grid.parameters),
            },
        ),
    )
    if grid.item_id == grid.dataset_id:  # OPeNDAP serves the best estimate, not each run
        item.add_asset("opendap", opendap_asset(grid.dataset_id, grid.parameters))
        item.stac_extensions.append(XARRAY_EXTENSION)
    item.add_asset(
        "tiles",
        server_asset(
            f"/tiles/{stream.id}/WebMercatorQuad/tilejson.json",
            "application/json",
            "map tiles (TileJSON)",
            role="tiles",
        ),
    )
    return item


def layer_item(stream: Stream, layer: LayerExtent) -> pystac.Item:
    """A GIS layer: its GeoParquet file (table extension with row count) and GeoJSON."""
    item = _item(
        stream,
        layer.dataset_id,
        box(layer.bbox),
        layer.bbox,
        {
            "title": layer.title or stream.title,
            "description": stream.summary or stream.title,
            "keywords": keywords(stream, []),
            "license": license_fields(stream.license)[0],
            "coastlake:geometry_types": layer.geometry_types,
            "coastlake:source": layer.source,
            **ioos_fields(stream),
        },
        when=layer.ingested_at or EPOCH,
    )
    geoparquet = asset(layer.url, PARQUET, "GeoParquet (EPSG:4326)")
    columns = [{"name": c} for c in [*layer.columns, "geometry"]]
    table = add_table_asset(item, "geoparquet", geoparquet, columns)
    table.row_count = layer.features
    table.primary_geometry = "geometry"
    item.add_asset(
        "geojson",
        server_asset(f"/data/layers/{layer.dataset_id}.geojson", "application/geo+json", "GeoJSON"),
    )
    return item
