"""Map tiles and point extraction from the lake's Icechunk grids against what an ncWMS-style
server does: open the source NetCDF file for every request.

Both sides render through the same TiTiler factory and colormap, served by uvicorn on
127.0.0.1 and fetched with httpx, so the difference is only where the data come from:
- ours: `tiles.app.create_app` over the Icechunk repository (Zarr v3, 256×256 chunks, the
  opened dataset cached per snapshot);
- baseline: the same TilerFactory whose reader opens the source .nc (netCDF4) per request.

Tiles: every WebMercatorQuad tile over the HF-radar grid (2197×1399, 1 km) at zooms 5–8,
`BENCH_TILE_ROUNDS` passes; the first pass is "cold" (fresh server, empty caches), the next
"warm". Point extraction: the 60-day MODIS SST series at `BENCH_POINTS` points, through
`lake.grids.open_grid` vs `xr.open_dataset(file)` per point, and over HTTP via EDR.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attr
import httpx
import morecantile
import numpy as np
import xarray as xr
from fastapi import FastAPI
from titiler.xarray.factory import TilerFactory
from titiler.xarray.io import Reader

from bench.common import WORK, Result
from ingest.grids import ingest_grid
from lake.grids import clear_open_cache, open_grid
from lake.registry import Stream
from lake.settings import Settings
from lake.storage import Storage
from tiles.app import create_app

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "grids"
HFR = DATA / "202506020000_hfr_uswc_1km_rtv_uwls_NDBC.nc"
MW_SST = DATA / "erdMWsstd1day_sst_20161017-20161217.nc"
ROUNDS = int(os.environ.get("BENCH_TILE_ROUNDS", "2"))
POINTS = int(os.environ.get("BENCH_POINTS", "50"))
ZOOMS = [5, 6, 7, 8]


def _stream(stream_id: str, path: Path) -> Stream:
    return Stream.model_validate(
        {
            "id": stream_id,
            "title": stream_id,
            "provider": {"name": "bench"},
            "category": "federal",
            "kind": "grid",
            "source": {"kind": "netcdf", "url": path.resolve().as_uri()},
        }
    )


def _netcdf_opener(src_path: str, group: str | None = None, **_: Any) -> xr.Dataset:
    """ncWMS style: open the provider's NetCDF file on every request."""
    return xr.open_dataset(src_path, decode_coords="all")


@attr.s
class NetcdfReader(Reader):
    opener: Callable[..., xr.Dataset] = attr.ib(default=_netcdf_opener)


def baseline_app(path: Path) -> FastAPI:
    app = FastAPI()

    def src(dataset_id: str) -> str:
        return str(path)

    factory = TilerFactory(reader=NetcdfReader, path_dependency=src, add_viewer=False)
    app.include_router(factory.router, prefix="/tiles/{dataset_id}")
    return app


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _tile_pass(base: str, urls: list[str], client: httpx.Client) -> tuple[list[float], int]:
    times = []
    nbytes = 0
    for u in urls:
        start = time.perf_counter()
        r = client.get(base + u, timeout=120)
        times.append(time.perf_counter() - start)
        if r.status_code != 200:
            raise RuntimeError(f"{u}: HTTP {r.status_code} {r.text[:200]}")
        nbytes += len(r.content)
    return times, nbytes


def _serve(app: FastAPI) -> Any:
    from tests.grids.support import serve

    return serve(app)


def run() -> list[Result]:
    work = WORK / "tiles"
    shutil.rmtree(work, ignore_errors=True)
    storage = Storage.from_settings(Settings(root=str(work / "lake")))
    t0 = time.perf_counter()
    ingest_grid(storage, _stream("hfr", HFR))
    ingest_grid(storage, _stream("mw-sst", MW_SST))
    log.info("ingest of both grids took %.1f s", time.perf_counter() - t0)

    src = xr.open_dataset(HFR)
    bbox = (
        float(src.lon.min()),
        float(src.lat.min()),
        float(src.lon.max()),
        float(src.lat.max()),
    )
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = [t for t in tms.tiles(*bbox, zooms=ZOOMS)]
    query = "?variable=u&rescale=-1,1&colormap_name=balance"
    urls = [f"/tiles/hfr/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png{query}" for t in tiles]

    results: list[Result] = []
    stats: dict[str, dict[str, list[float]]] = {}
    for name, app in (("ours", create_app(storage)), ("baseline", baseline_app(HFR))):
        clear_open_cache()
        with _serve(app) as base, httpx.Client() as client:
            passes = []
            for _ in range(ROUNDS):
                times, _n = _tile_pass(base, urls, client)
                passes.append(times)
        stats[name] = {"cold": passes[0], "warm": [x for p in passes[1:] for x in p]}
    for phase in ("cold", "warm"):
        ours, base_t = stats["ours"][phase], stats["baseline"][phase]
        if not ours:
            continue
        detail = {
            "tiles": len(urls),
            "zooms": ZOOMS,
            "grid": "HF radar u, 2197x1399, 1 time",
            "ours_mean_s": float(np.mean(ours)),
            "baseline_mean_s": float(np.mean(base_t)),
        }
        results.extend(
            Result(
                name=f"tile_{phase}_p{q}",
                baseline="NetCDF opened per request (ncWMS style), same TiTiler renderer",
                ours_s=_pct(ours, q),
                baseline_s=_pct(base_t, q),
                rows=len(ours),
                detail=detail,
            )
            for q in (50, 95)
        )

    # point extraction: a 60-day series at random valid cells
    mw = xr.open_dataset(MW_SST).squeeze("altitude").load()
    rng = random.Random(6)
    points = [
        (float(mw.longitude[rng.randrange(81)]) - 360.0, float(mw.latitude[rng.randrange(81)]))
        for _ in range(POINTS)
    ]

    def ours_points() -> list[np.ndarray]:
        out = []
        for lon, lat in points:
            ds = open_grid(storage, "mw-sst")
            out.append(ds.sst.sel(longitude=lon, latitude=lat, method="nearest").values)
        return out

    def baseline_points() -> list[np.ndarray]:
        out = []
        for lon, lat in points:
            with xr.open_dataset(MW_SST) as ds:
                out.append(ds.sst.sel(longitude=lon + 360.0, latitude=lat, method="nearest").values)
        return out

    clear_open_cache()
    start = time.perf_counter()
    a = ours_points()
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    b = baseline_points()
    base_s = time.perf_counter() - start
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.ravel(x), np.ravel(y))
    results.append(
        Result(
            name="point_series_in_process",
            baseline="xr.open_dataset(source .nc) per point",
            ours_s=ours_s / POINTS,
            baseline_s=base_s / POINTS,
            rows=POINTS,
            detail={"series_length": 60, "per": "point"},
        )
    )

    with _serve(create_app(storage)) as base, httpx.Client() as client:
        times = []
        for lon, lat in points:
            start = time.perf_counter()
            r = client.get(
                f"{base}/grids/datasets/mw-sst/edr/position",
                params={"coords": f"POINT({lon} {lat})", "parameter-name": "sst", "f": "csv"},
                timeout=60,
            )
            times.append(time.perf_counter() - start)
            r.raise_for_status()
    results.append(
        Result(
            name="point_series_edr_http_p50",
            baseline="xr.open_dataset(source .nc) per point (in process)",
            ours_s=_pct(times, 50),
            baseline_s=base_s / POINTS,
            rows=POINTS,
            detail={"p95_s": _pct(times, 95), "format": "csv"},
        )
    )
    return results
