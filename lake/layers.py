"""Static GIS layers: Shapefile or GeoJSON in, GeoParquet in the lake, GeoJSON/Shapefile out.

A layer is one GeoParquet file at `<root>/layers/<layer_id>/layer.parquet`, always in
EPSG:4326 (lon/lat), so web maps, DuckDB's spatial extension and GeoPandas read it without
knowing where it came from; the source CRS is kept in the layer's metadata. Writes are
atomic: a bad file raises before the stored layer is touched.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow.parquet as pq
from shapely.geometry import box

from lake.errors import NotFound, ParseError
from lake.storage import Storage

log = logging.getLogger(__name__)

LAYERS = "layers"
FILE = "layer.parquet"
META = "layer.json"
WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class LayerInfo:
    """What the catalog and the map need to know about one layer."""

    layer_id: str
    title: str
    url: str
    bbox: tuple[float, float, float, float]
    features: int
    geometry_types: list[str]
    columns: list[str]
    source: str = ""
    source_crs: str | None = None
    ingested_at: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)


def layer_url(storage: Storage, layer_id: str) -> str:
    return storage.url(LAYERS, layer_id, FILE)


def read_source(
    layer_id: str, source: str | Path, assume_crs: str | None = None
) -> gpd.GeoDataFrame:
    """Read a Shapefile (.shp or zipped), GeoJSON or GeoPackage and reproject it to EPSG:4326.

    A file with no CRS is refused unless `assume_crs` is given (GeoJSON is WGS84 by RFC 7946),
    because guessing the CRS of projected coordinates puts features in the wrong ocean.
    """
    src = str(source)
    path = src.removeprefix("file://")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:
        raise ParseError(source=layer_id, file=src, what=f"not a readable GIS file: {exc}") from exc
    if gdf.empty:
        raise ParseError(source=layer_id, file=src, what="the file holds no features")
    if gdf.crs is None:
        if assume_crs is None and path.lower().endswith((".geojson", ".json")):
            assume_crs = WGS84
        if assume_crs is None:
            raise ParseError(
                source=layer_id,
                file=src,
                what="no coordinate reference system (.prj missing); pass the CRS explicitly",
            )
        gdf = gdf.set_crs(assume_crs)
    epsg = gdf.crs.to_epsg()
    source_crs = f"EPSG:{epsg}" if epsg else str(gdf.crs.name)
    gdf = gdf.to_crs(WGS84)
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        gdf.loc[invalid, "geometry"] = gdf.geometry[invalid].make_valid()
    gdf.attrs["source_crs"] = source_crs
    return gdf


def write_layer(
    storage: Storage, layer_id: str, gdf: gpd.GeoDataFrame, title: str = "", source: str = ""
) -> LayerInfo:
    """Store a layer as GeoParquet (replacing the previous version atomically)."""
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(WGS84)
    buf = io.BytesIO()
    gdf.to_parquet(buf, index=False, compression="zstd", write_covering_bbox=True)
    storage.write_bytes(layer_url(storage, layer_id), buf.getvalue())
    minx, miny, maxx, maxy = (float(x) for x in gdf.total_bounds)
    meta = {
        "layer_id": layer_id,
        "title": title or layer_id,
        "source": source,
        "source_crs": gdf.attrs.get("source_crs"),
        "bbox": [minx, miny, maxx, maxy],
        "features": len(gdf),
        "geometry_types": sorted(str(t) for t in gdf.geom_type.dropna().unique()),
        "columns": [c for c in gdf.columns if c != "geometry"],
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    storage.write_bytes(storage.url(LAYERS, layer_id, META), json.dumps(meta).encode())
    log.info("layer %s: %d features stored from %s", layer_id, len(gdf), source or "memory")
    return _info(storage, meta)


def ingest_layer(
    storage: Storage,
    layer_id: str,
    source: str | Path,
    title: str = "",
    assume_crs: str | None = None,
) -> LayerInfo:
    """Read a GIS file, reproject to EPSG:4326 and store it as the layer `layer_id`."""
    gdf = read_source(layer_id, source, assume_crs)
    return write_layer(storage, layer_id, gdf, title=title, source=str(source))


def _info(storage: Storage, meta: dict[str, Any]) -> LayerInfo:
    return LayerInfo(
        layer_id=meta["layer_id"],
        title=meta.get("title", meta["layer_id"]),
        url=layer_url(storage, meta["layer_id"]),
        bbox=tuple(meta["bbox"]),
        features=int(meta["features"]),
        geometry_types=list(meta.get("geometry_types", [])),
        columns=list(meta.get("columns", [])),
        source=meta.get("source", ""),
        source_crs=meta.get("source_crs"),
        ingested_at=meta.get("ingested_at", ""),
    )


def layer_info(storage: Storage, layer_id: str) -> LayerInfo:
    """One layer's description; NotFound if it is not in the lake."""
    url = storage.url(LAYERS, layer_id, META)
    if not storage.exists(url):
        raise NotFound(f"no layer {layer_id!r} in the lake")
    return _info(storage, json.loads(storage.read_bytes(url)))


def list_layers(storage: Storage) -> list[LayerInfo]:
    """Every vector layer in the lake (for the catalog, the portal and `lake status`)."""
    out = []
    for folder in storage.list(storage.url(LAYERS)):
        layer_id = folder.rstrip("/").rsplit("/", 1)[-1]
        try:
            out.append(layer_info(storage, layer_id))
        except NotFound:
            continue
    return out


def read_layer(
    storage: Storage,
    layer_id: str,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> gpd.GeoDataFrame:
    """Features of a layer, optionally those intersecting `bbox` (lon/lat), paged."""
    url = layer_url(storage, layer_id)
    if not storage.exists(url):
        raise NotFound(f"no layer {layer_id!r} in the lake")
    table = pq.read_table(io.BytesIO(storage.read_bytes(url)))
    gdf = gpd.GeoDataFrame.from_arrow(table)
    if "bbox" in gdf.columns:
        gdf = gdf.drop(columns="bbox")
    if bbox is not None:
        gdf = gdf[gdf.intersects(box(*bbox))]
    gdf = gdf.iloc[offset : None if limit is None else offset + limit]
    return gdf


def to_geojson(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946: lon/lat WGS84)."""
    doc: dict[str, Any] = json.loads(gdf.to_json(drop_id=True, to_wgs84=True))
    return doc


def to_shapefile_zip(gdf: gpd.GeoDataFrame, name: str) -> bytes:
    """A zipped ESRI Shapefile (.shp/.shx/.dbf/.prj/.cpg) of the features, in EPSG:4326."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.shp"
        gdf.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, part.name)
    return buf.getvalue()
