"""The map services over real HTTP on 127.0.0.1 (uvicorn): XYZ tiles whose pixels follow the
colormap, TileJSON, WMTS and WMS read by OWSLib, previews, OPeNDAP and EDR values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import xarray as xr
from owslib.wms import WebMapService
from owslib.wmts import WebMapTileService
from rasterio.io import MemoryFile
from rio_tiler.colormap import cmap

from coastlake.server.app import maps_app as create_app
from ingest.grids import ingest_grid
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import ERSST, MW_SST, grid_stream, serve

DAY = 4  # 2016-10-22T12: a day with clouds (no data) and clear sky
DAY_ISO = "2016-10-22T12:00:00"
THERMAL = cmap.get("thermal")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("maps") / "lake"
    storage = Storage.from_settings(Settings(root=str(root)))
    ingest_grid(storage, grid_stream("mw-sst", MW_SST))
    ingest_grid(
        storage,
        grid_stream(
            "ersst",
            ERSST,
            variables=[
                {"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"},
                {
                    "source": "ssta",
                    "standard_name": "sea_surface_temperature_anomaly",
                    "units": "degree_C",
                },
            ],
        ),
    )
    with serve(create_app(storage)) as base:
        yield base


@pytest.fixture(scope="module")
def source() -> xr.Dataset:
    return xr.open_dataset(MW_SST).squeeze("altitude").load()


def rgba(png: bytes) -> np.ndarray:
    """(rows, cols, 4) uint8 from PNG bytes."""
    with MemoryFile(png) as mem, mem.open() as src:
        data = src.read()
    if data.shape[0] == 2:  # grey + alpha
        data = np.stack([data[0], data[0], data[0], data[1]])
    return np.moveaxis(data, 0, -1)


def expected_index(value: float, vmin: float = 0.0, vmax: float = 32.0) -> int:
    v = min(max(value, vmin), vmax)
    return int((v - vmin) / (vmax - vmin) * 255)


def colour_matches(pixel: np.ndarray, value: float) -> bool:
    i = expected_index(value)
    return any(
        tuple(pixel[:3]) == tuple(THERMAL[j][:3]) for j in range(max(0, i - 1), min(255, i + 1) + 1)
    )


def test_wms_capabilities_and_getmap_with_owslib(served: str, source: xr.Dataset) -> None:
    wms = WebMapService(f"{served}/wms", version="1.3.0", timeout=60)
    assert "mw-sst:sst" in wms.contents and "ersst:ssta" in wms.contents
    layer = wms["mw-sst:sst"]
    assert layer.boundingBoxWGS84 == pytest.approx((-150.0, 30.0, -149.0, 31.0))
    assert "2016-10-22T12:00:00Z" in layer.timepositions
    assert "GetMap" in [op.name for op in wms.operations]
    # one pixel per grid cell: the bbox is the cells' outer edges, 81 × 81 pixels
    half = 0.0125 / 2
    img = wms.getmap(
        layers=["mw-sst:sst"],
        styles=["default"],
        srs="EPSG:4326",
        bbox=(-150 - half, 30 - half, -149 + half, 31 + half),  # OWSLib sends lat/lon for 1.3.0
        size=(81, 81),
        format="image/png",
        time=DAY_ISO + "Z",
        transparent=True,
    )
    pixels = rgba(img.read())
    assert pixels.shape == (81, 81, 4)
    values = source.sst.isel(time=DAY).values[::-1, :]  # north up
    nodata = np.isnan(values)
    assert nodata.any() and (~nodata).any()
    assert (pixels[nodata][:, 3] == 0).all(), "no-data cells must be transparent"
    assert (pixels[~nodata][:, 3] == 255).all()
    rows, cols = np.nonzero(~nodata)
    picks = np.linspace(0, len(rows) - 1, 40).astype(int)
    for r, c in zip(rows[picks], cols[picks], strict=True):
        assert colour_matches(pixels[r, c], float(values[r, c])), (r, c, values[r, c])


def test_wms_errors_are_service_exceptions(served: str) -> None:
    r = httpx.get(
        f"{served}/wms",
        params={
            "service": "WMS",
            "request": "GetMap",
            "version": "1.3.0",
            "layers": "nope",
            "crs": "EPSG:4326",
            "bbox": "0,0,1,1",
            "width": 10,
            "height": 10,
        },
    )
    assert r.status_code == 400 and "ServiceException" in r.text and "dataset:variable" in r.text


def test_xyz_tile_pixels_follow_colormap_and_transparent_outside(
    served: str, source: xr.Dataset
) -> None:
    tj = httpx.get(
        f"{served}/tiles/mw-sst/WebMercatorQuad/tilejson.json",
        params={"variable": "sst", "sel": f"time={DAY_ISO}", "minzoom": 6, "maxzoom": 9},
    ).json()
    assert tj["tilejson"].startswith("3.")
    assert tj["bounds"] == pytest.approx([-150.00625, 29.99375, -148.99375, 31.00625], abs=1e-3)
    template = tj["tiles"][0]
    # z7 tile containing the grid; the grid is a small part of it
    url = template.format(z=7, x=10, y=52)
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    pixels = rgba(r.content)
    alpha = pixels[..., 3]
    assert (alpha == 0).sum() > 0.5 * alpha.size  # outside the 1°×1° grid: transparent
    opaque = pixels[alpha == 255][:, :3]
    assert len(opaque) > 100
    valid = source.sst.isel(time=DAY).values
    indexes = {expected_index(float(v)) for v in valid[np.isfinite(valid)]}
    allowed = {tuple(THERMAL[j][:3]) for i in indexes for j in (i - 1, i, i + 1) if 0 <= j <= 255}
    colours = {tuple(int(x) for x in p) for p in opaque}
    assert colours <= allowed
    assert len(colours) > 5  # a map, not a flat colour


def test_tile_defaults_to_newest_time_and_time_selection_changes_tile(served: str) -> None:
    base = f"{served}/tiles/mw-sst/tiles/WebMercatorQuad/7/10/52.png"
    newest = httpx.get(base, params={"variable": "sst"}, timeout=60)
    last = httpx.get(
        base, params={"variable": "sst", "sel": "time=2016-12-17T12:00:00"}, timeout=60
    )
    day = httpx.get(base, params={"variable": "sst", "sel": f"time={DAY_ISO}"}, timeout=60)
    assert newest.status_code == last.status_code == day.status_code == 200
    assert np.array_equal(rgba(newest.content), rgba(last.content))
    assert not np.array_equal(rgba(day.content), rgba(last.content))


def test_wmts_capabilities_parse_with_owslib(served: str) -> None:
    url = f"{served}/tiles/mw-sst/WebMercatorQuad/WMTSCapabilities.xml"
    wmts = WebMapTileService(url)
    assert "mw-sst:sst" in wmts.contents
    assert "WebMercatorQuad" in wmts.tilematrixsets
    layer = wmts.contents["mw-sst:sst"]
    template = layer.resourceURLs[0]["template"]
    tile = (
        template.replace("{TileMatrix}", "7")
        .replace("{TileCol}", "10")
        .replace("{TileRow}", "52")
        .replace("{Time}", DAY_ISO + "Z")
    )
    r = httpx.get(tile, timeout=60)
    assert r.status_code == 200 and rgba(r.content)[..., 3].max() == 255


def test_preview_png_per_layer(served: str) -> None:
    listing = httpx.get(f"{served}/tiles").json()
    layers = {(g["dataset_id"], v["name"]): v for g in listing for v in g["variables"]}
    assert ("ersst", "ssta") in layers
    r = httpx.get(served + layers[("ersst", "sst")]["preview"], timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    pixels = rgba(r.content)
    assert pixels.shape[1] == 800  # longest side
    alpha = pixels[..., 3]
    assert (alpha == 0).any() and (alpha == 255).sum() > 0.4 * alpha.size  # land vs ocean
    assert httpx.get(f"{served}/tiles/nope/sst/preview.png").status_code == 404


def test_opendap_reads_the_same_values(served: str, source: xr.Dataset) -> None:
    ds = xr.open_dataset(f"{served}/grids/datasets/mw-sst/opendap")
    assert ds.sizes["time"] == 60
    for t, j, i in [(0, 10, 20), (DAY, 40, 40), (42, 80, 0)]:
        got = float(ds.sst.isel(time=t, latitude=j, longitude=i))
        want = float(source.sst.isel(time=t, latitude=j, longitude=i))
        np.testing.assert_equal(got, want)
    assert float(ds.longitude.min()) == pytest.approx(-150.0)
    assert ds.sst.attrs["standard_name"] == "sea_surface_temperature"


def test_edr_position_time_series_csv_and_coveragejson(served: str, source: xr.Dataset) -> None:
    lon, lat = -149.5, 30.5
    r = httpx.get(
        f"{served}/grids/datasets/mw-sst/edr/position",
        params={"coords": f"POINT({lon} {lat})", "parameter-name": "sst", "f": "csv"},
        timeout=60,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(r.text))
    want = source.sst.sel(latitude=lat, longitude=lon + 360, method="nearest")
    assert len(table) == 60
    np.testing.assert_allclose(table["sst"].to_numpy(), want.values, equal_nan=True)
    cov = httpx.get(
        f"{served}/grids/datasets/mw-sst/edr/position",
        params={"coords": f"POINT({lon} {lat})", "parameter-name": "sst"},
        timeout=60,
    ).json()
    assert cov["type"] == "Coverage"


def test_unknown_grid_is_404(served: str) -> None:
    r = httpx.get(
        f"{served}/tiles/nope/tiles/WebMercatorQuad/1/0/0.png", params={"variable": "sst"}
    )
    assert r.status_code == 404 and "nope" in r.text


def test_tiles_module_is_the_server_contract() -> None:
    import tiles.app

    assert callable(tiles.app.install)  # install(app, deps), as every server part
    assert Path(tiles.app.__file__).parent.name == "tiles"


def test_wms_111_for_older_clients(served: str, source: xr.Dataset) -> None:
    wms = WebMapService(f"{served}/wms", version="1.1.1", timeout=60)
    assert wms.version == "1.1.1"
    layer = wms["mw-sst:sst"]
    assert layer.boundingBoxWGS84 == pytest.approx((-150.0, 30.0, -149.0, 31.0))
    half = 0.0125 / 2
    img = wms.getmap(
        layers=["mw-sst:sst"],
        styles=[""],
        srs="EPSG:4326",
        bbox=(-150 - half, 30 - half, -149 + half, 31 + half),  # 1.1.1: always lon/lat
        size=(81, 81),
        format="image/png",
        time=DAY_ISO,
    )
    pixels = rgba(img.read())
    values = source.sst.isel(time=DAY).values[::-1, :]
    assert (pixels[np.isnan(values)][:, 3] == 0).all()
    r, c = np.argwhere(np.isfinite(values))[0]
    assert colour_matches(pixels[r, c], float(values[r, c]))


def test_unknown_grid_request_creates_nothing(tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    with serve(create_app(storage)) as base:
        r = httpx.get(f"{base}/tiles/ghost/info", params={"variable": "sst"})
    assert r.status_code == 404
    assert not (tmp_path / "lake" / "grids" / "ghost").exists()
