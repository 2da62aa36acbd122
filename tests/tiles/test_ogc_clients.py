"""The OGC requests GIS and web-map users send besides GetMap, through OWSLib against a real
server: WMS GetFeatureInfo (JSON and text) equal to the stored cell, GetLegendGraphic in the
layer's colours, a WMTS tile without `Time` (the newest), WFS 2.0 GetCapabilities,
DescribeFeatureType and GetFeature (BBOX, COUNT, GeoJSON and GML), and a CORS preflight from
a page on another origin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import morecantile
import numpy as np
import pytest
import shapely
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from owslib.wmts import WebMapTileService
from rasterio.io import MemoryFile
from rio_tiler.colormap import cmap

from coastlake.server.app import maps_app
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.layers import ingest_layer, read_layer
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import MPA_SHP, MW_SST, STATE_SHP, grid_stream, serve

HALF = 0.0125 / 2


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    root = tmp_path_factory.mktemp("ogc") / "lake"
    storage = Storage.from_settings(Settings(root=str(root)))
    ingest_grid(storage, grid_stream("mw-sst", MW_SST))
    ingest_layer(storage, "ca-state", STATE_SHP, title="California")
    ingest_layer(storage, "ca-mpa", MPA_SHP, title="California marine protected areas")
    return storage


@pytest.fixture(scope="module")
def served(lake: Storage) -> Iterator[str]:
    with serve(maps_app(lake)) as base:
        yield base


def test_getfeatureinfo_is_the_stored_cell(served: str, lake: Storage) -> None:
    want = GridStore(lake, "mw-sst").open().sst
    wms = WebMapService(f"{served}/wms", version="1.3.0", timeout=60)
    assert "GetFeatureInfo" in [op.name for op in wms.operations]
    # a 81x81 map whose pixels are the grid cells; click cells with and without data
    box = (-150 - HALF, 30 - HALF, -149 + HALF, 31 + HALF)  # OWSLib sends lat/lon for 1.3.0
    day = "2016-10-22T12:00:00Z"  # a day with clouds (no data) and clear sky
    values = want.sel(time=day[:-1]).values[::-1, :]  # north up
    rows, cols = np.nonzero(np.isfinite(values))
    picks = [(int(rows[k]), int(cols[k])) for k in (0, len(rows) // 2, len(rows) - 1)]
    row, col = (int(v) for v in np.argwhere(np.isnan(values))[0])
    picks.append((row, col))
    for j, i in picks:
        r = wms.getfeatureinfo(
            layers=["mw-sst:sst"],
            query_layers=["mw-sst:sst"],
            srs="EPSG:4326",
            bbox=box,
            size=(81, 81),
            format="image/png",
            info_format="application/json",
            xy=(i, j),
            time=day,
        )
        props = json.loads(r.read())["features"][0]["properties"]
        value = values[j, i]
        assert props["value"] == (None if np.isnan(value) else pytest.approx(float(value)))
        assert props["time"] == day
        assert props["units"] == "degree_C"
    text = (
        wms.getfeatureinfo(
            layers=["mw-sst:sst"],
            query_layers=["mw-sst:sst"],
            srs="EPSG:4326",
            bbox=box,
            size=(81, 81),
            format="image/png",
            info_format="text/plain",
            xy=picks[1][::-1],
        )
        .read()
        .decode()
    )
    # WMS 1.1.1 (OWSLib's default, older desktop GIS): X/Y and lon/lat order
    old = WebMapService(f"{served}/wms", version="1.1.1", timeout=60).getfeatureinfo(
        layers=["mw-sst:sst"],
        query_layers=["mw-sst:sst"],
        srs="EPSG:4326",
        bbox=box,
        size=(81, 81),
        format="image/png",
        info_format="application/json",
        xy=picks[0][::-1],
        time=day,
    )
    value_111 = json.loads(old.read())["features"][0]["properties"]["value"]
    assert value_111 == pytest.approx(float(values[picks[0]]))
    # no TIME: the newest
    newest = want.isel(time=-1).values[::-1, :][picks[1]]
    assert ("value = " + ("" if np.isnan(newest) else f"{float(newest)}")) in text
    assert "time = " + str(want.time.values[-1])[:19] + "Z" in text
    outside = httpx.get(
        f"{served}/wms",
        params={
            "service": "WMS",
            "request": "GetFeatureInfo",
            "version": "1.3.0",
            "layers": "mw-sst:sst",
            "query_layers": "mw-sst:sst",
            "crs": "EPSG:4326",
            "bbox": "0,0,1,1",
            "width": "10",
            "height": "10",
            "i": "5",
            "j": "5",
            "info_format": "application/json",
        },
    )
    assert json.loads(outside.text)["features"][0]["properties"]["value"] is None
    bad = httpx.get(
        f"{served}/wms",
        params={
            "request": "GetFeatureInfo",
            "layers": "mw-sst:sst",
            "crs": "EPSG:4326",
            "bbox": "30,-150,31,-149",
            "width": "10",
            "height": "10",
            "i": "50",
            "j": "1",
        },
    )
    assert bad.status_code == 400 and "ServiceException" in bad.text


def test_legend_graphic_in_the_layer_colours(served: str) -> None:
    r = httpx.get(
        f"{served}/wms",
        params={
            "request": "GetLegendGraphic",
            "layer": "mw-sst:sst",
            "format": "image/png",
            "width": "200",
            "height": "20",
        },
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with MemoryFile(r.content) as mem, mem.open() as img:
        pixels = img.read()
    assert pixels.shape[1:] == (20, 200)
    thermal = cmap.get("thermal")
    assert tuple(pixels[:3, 10, 0]) == tuple(thermal[0][:3])
    assert tuple(pixels[:3, 10, -1]) == tuple(thermal[255][:3])


def test_wmts_tile_without_time_is_the_newest(served: str, lake: Storage) -> None:
    tile = morecantile.tms.get("WebMercatorQuad").tile(-149.5, 30.5, 7)
    wmts = WebMapTileService(f"{served}/tiles/mw-sst/WebMercatorQuad/WMTSCapabilities.xml")
    without = wmts.gettile(
        layer="mw-sst:sst",
        tilematrixset="WebMercatorQuad",
        tilematrix="7",
        row=tile.y,
        column=tile.x,
        format="image/png",
    ).read()
    newest = str(GridStore(lake, "mw-sst").open().time.values[-1])[:19] + "Z"
    explicit = wmts.gettile(
        layer="mw-sst:sst",
        tilematrixset="WebMercatorQuad",
        tilematrix="7",
        row=tile.y,
        column=tile.x,
        format="image/png",
        Time=newest,
    ).read()
    assert without[:8] == b"\x89PNG\r\n\x1a\n"
    assert without == explicit


def test_wfs_read_by_owslib_geojson_and_gml(served: str, lake: Storage, tmp_path: Path) -> None:
    wfs = WebFeatureService(f"{served}/wfs", version="2.0.0", timeout=60)
    assert {"coastlake:ca-state", "coastlake:ca-mpa"} <= set(wfs.contents)
    schema = wfs.get_schema("coastlake:ca-mpa")
    assert schema["geometry"] and set(schema["properties"]) >= set(
        read_layer(lake, "ca-mpa").columns
    ) - {"geometry"}
    every = read_layer(lake, "ca-mpa")
    box = (-122.6, 37.0, -121.8, 38.0)  # lon/lat around Monterey Bay and San Francisco
    inside = every[every.intersects(shapely.box(*box))]
    r = wfs.getfeature(typename=["coastlake:ca-mpa"], bbox=box, outputFormat="application/json")
    doc = json.loads(r.read())
    assert doc["numberMatched"] == len(inside) > 0
    assert len(doc["features"]) == len(inside)
    few = wfs.getfeature(
        typename=["coastlake:ca-mpa"], maxfeatures=3, outputFormat="application/json"
    )
    assert len(json.loads(few.read())["features"]) == 3
    hits = httpx.get(
        f"{served}/wfs",
        params={"request": "GetFeature", "typenames": "coastlake:ca-mpa", "resulttype": "hits"},
    )
    assert f'numberMatched="{len(every)}"' in hits.text and "wfs:member" not in hits.text
    other_crs = httpx.get(
        f"{served}/wfs",
        params={"request": "GetFeature", "typenames": "coastlake:ca-mpa", "srsname": "EPSG:3857"},
    )
    assert other_crs.status_code == 400
    gml = wfs.getfeature(typename=["coastlake:ca-state"]).read()
    path = tmp_path / "state.gml"
    path.write_bytes(gml)
    read_back = gpd.read_file(path)
    state = read_layer(lake, "ca-state")
    assert len(read_back) == len(state) == 1
    assert read_back.geometry.iloc[0].area == pytest.approx(state.geometry.iloc[0].area, rel=1e-6)


def test_cors_preflight_from_another_origin(served: str) -> None:
    origin = "https://maps.example.org"
    pre = httpx.options(
        f"{served}/wms",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] in ("*", origin)
    get = httpx.get(f"{served}/wms?request=GetCapabilities", headers={"Origin": origin})
    assert get.headers["access-control-allow-origin"] in ("*", origin)
    assert "access-control-allow-credentials" not in get.headers
    admin = httpx.options(
        f"{served}/admin/anything",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in admin.headers
