"""GIS layers: Shapefile/GeoJSON in (reprojected to EPSG:4326), GeoParquet in the lake,
GeoJSON with a bbox filter and a zipped Shapefile out, over real HTTP."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
from pyproj import Transformer
from shapely.geometry import box

from coastlake.server.app import maps_app as create_app
from lake.errors import NotFound, ParseError
from lake.layers import ingest_layer, list_layers, read_layer
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import GIS, MPA_SHP, STATE_SHP, serve

SF_BAY = (-122.6, 37.5, -122.3, 38.0)


def test_projected_shapefile_reprojected_to_wgs84(storage: Storage) -> None:
    info = ingest_layer(storage, "ca-mpas", MPA_SHP, title="California MPAs")
    src = gpd.read_file(MPA_SHP)
    assert info.features == len(src) == 155
    assert info.source_crs == "NAD83 / California Albers"
    w, s, e, n = info.bbox
    assert -125 < w < e < -117 and 32 < s < n < 42.1
    lake = read_layer(storage, "ca-mpas")
    assert lake.crs.to_epsg() == 4326
    # one vertex, transformed independently with pyproj, lands where the lake put it
    to_wgs84 = Transformer.from_crs(src.crs, 4326, always_xy=True)
    row = src[src["NAME"] == "Pyramid Point SMCA"].iloc[0]
    x, y = (
        row.geometry.exterior.coords[0]
        if row.geometry.geom_type == "Polygon"
        else (row.geometry.geoms[0].exterior.coords[0])
    )
    want = to_wgs84.transform(x, y)
    got = lake[lake["NAME"] == "Pyramid Point SMCA"].iloc[0].geometry
    got_xy = (
        got.exterior.coords[0] if got.geom_type == "Polygon" else got.geoms[0].exterior.coords[0]
    )
    assert got_xy == pytest.approx(want, abs=1e-7)
    assert [layer.layer_id for layer in list_layers(storage)] == ["ca-mpas"]


def test_geojson_in_and_bbox_filter(local_settings: Settings, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    state = gpd.read_file(STATE_SHP).to_crs(4326)
    path = tmp_path / "ca.geojson"
    state.to_file(path, driver="GeoJSON")
    info = ingest_layer(storage, "ca-state", path)
    assert info.features == 1 and info.geometry_types in (["MultiPolygon"], ["Polygon"])
    assert len(read_layer(storage, "ca-state", bbox=(-80, 30, -70, 40))) == 0
    assert len(read_layer(storage, "ca-state", bbox=SF_BAY)) == 1


def test_shapefile_without_prj_refused(local_settings: Settings, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    for ext in (".shp", ".shx", ".dbf"):
        shutil.copy(GIS / f"CA_State_TIGER2016{ext}", tmp_path / f"noprj{ext}")
    with pytest.raises(ParseError, match=r"noprj.shp.*no coordinate reference system"):
        ingest_layer(storage, "noprj", tmp_path / "noprj.shp")
    with pytest.raises(NotFound):
        read_layer(storage, "noprj")


def test_features_api_and_shapefile_download_over_http(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    ingest_layer(storage, "ca-mpas", MPA_SHP, title="California MPAs")
    with serve(create_app(storage)) as base:
        cols = httpx.get(f"{base}/features/collections").json()
        assert [c["id"] for c in cols["collections"]] == ["ca-mpas"]
        r = httpx.get(
            f"{base}/features/collections/ca-mpas/items",
            params={"bbox": ",".join(map(str, SF_BAY)), "limit": 100},
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        doc = r.json()
        assert doc["type"] == "FeatureCollection"
        gdf = gpd.GeoDataFrame.from_features(doc["features"], crs=4326)
        assert 0 < doc["numberMatched"] < 155 and len(gdf) == doc["numberReturned"]
        names = set(gdf["NAME"])
        assert gdf.intersects(box(*SF_BAY)).all()
        page = httpx.get(f"{base}/features/collections/ca-mpas/items", params={"limit": 10})
        assert page.json()["numberReturned"] == 10
        assert any(link["rel"] == "next" for link in page.json()["links"])
        z = httpx.get(
            f"{base}/features/collections/ca-mpas/shapefile.zip",
            params={"bbox": ",".join(map(str, SF_BAY))},
        )
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
        members = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
        assert {"ca-mpas.shp", "ca-mpas.shx", "ca-mpas.dbf", "ca-mpas.prj"} <= set(members)
        shp = gpd.read_file(io.BytesIO(z.content))
        assert shp.crs.to_epsg() == 4326
        assert set(shp["NAME"]) == names
        assert httpx.get(f"{base}/features/collections/nope/items").status_code == 404
        bad = httpx.get(f"{base}/features/collections/ca-mpas/items", params={"bbox": "1,2"})
        assert bad.status_code == 400 and "minlon" in bad.text
