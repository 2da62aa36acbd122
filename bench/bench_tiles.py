"""Map tiles and point extraction from the lake's Icechunk grids against what a competent
server over the provider's NetCDF files does: keep each file open between requests, as
THREDDS and ncWMS do.

All sides render through the same TiTiler factory and colormap, served by uvicorn on
127.0.0.1 and fetched with httpx, so the difference is only where the data come from:
- ours: the map services (`coastlake.server.app.maps_app`, tiles.app) over the Icechunk
  repository (Zarr v3, 256×256 chunks, the opened dataset cached per snapshot);
- baseline: the same TilerFactory whose reader opens each source .nc (netCDF4, lazily) on
  its first request and keeps it open (a dict of open datasets keyed by path);
- extra, weak: the same reader opening the source .nc on every request.

Tiles: every WebMercatorQuad tile over the HF-radar grid (2197×1399, 1 km) at zooms 5–8
(`BENCH_TILE_ZOOMS`), `BENCH_TILE_ROUNDS` passes; the first pass is "cold" (fresh server,
empty caches, closed files), the next "warm". Each tile is timed on its own: p50 and p95.
Point extraction: the 60-day MODIS SST series at `BENCH_POINTS` points, through
`lake.grids.open_grid` vs the source file opened once (and, extra, opened per point), each
point timed on its own, and over HTTP via EDR.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
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
from coastlake.server.app import maps_app
from ingest.grids import ingest_grid
from lake.grids import clear_open_cache, open_grid
from lake.registry import Stream
from lake.settings import Settings
from lake.storage import Storage

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "grids"
HFR = DATA / "202506020000_hfr_uswc_1km_rtv_uwls_NDBC.nc"
MW_SST = DATA / "erdMWsstd1day_sst_20161017-20161217.nc"
ROUNDS = int(os.environ.get("BENCH_TILE_ROUNDS", "2"))
POINTS = int(os.environ.get("BENCH_POINTS", "50"))
ZOOMS = [int(z) for z in os.environ.get("BENCH_TILE_ZOOMS", "5,6,7,8").split(",")]
OPEN_ONCE = "NetCDF opened once and kept open (THREDDS/ncWMS style), same TiTiler renderer"
OPEN_PER_REQUEST = "NetCDF opened per request (weak, extra), same TiTiler renderer"


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
    """The weak extra: open the provider's NetCDF file on every request."""
    return xr.open_dataset(src_path, decode_coords="all")


_OPEN: dict[str, xr.Dataset] = {}
_OPEN_LOCK = threading.Lock()


def open_once(src_path: str, group: str | None = None, **_: Any) -> xr.Dataset:
    """The baseline: open each source file (lazily) on its first request, then keep it open."""
    with _OPEN_LOCK:
        ds = _OPEN.get(src_path)
        if ds is None:
            ds = _OPEN[src_path] = xr.open_dataset(src_path, decode_coords="all")
    return ds


def close_open_once() -> None:
    """Close the kept files (a cold start for the next server)."""
    with _OPEN_LOCK:
        for ds in _OPEN.values():
            ds.close()
        _OPEN.clear()


@attr.s
class NetcdfReader(Reader):
    opener: Callable[..., xr.Dataset] = attr.ib(default=_netcdf_opener)


@attr.s
class OpenOnceReader(Reader):
    opener: Callable[..., xr.Dataset] = attr.ib(default=open_once)

    def close(self) -> None:
        """The file stays open for the next request."""


def baseline_app(path: Path, reader: type[Reader]) -> FastAPI:
    app = FastAPI()

    def src(dataset_id: str) -> str:
        return str(path)

    factory = TilerFactory(reader=reader, path_dependency=src, add_viewer=False)
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


def tile_urls() -> list[str]:
    with xr.open_dataset(HFR) as src:
        bbox = (
            float(src.lon.min()),
            float(src.lat.min()),
            float(src.lon.max()),
            float(src.lat.max()),
        )
    tms = morecantile.tms.get("WebMercatorQuad")
    query = "?variable=u&rescale=-1,1&colormap_name=balance"
    return [
        f"/tiles/hfr/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png{query}"
        for t in tms.tiles(*bbox, zooms=ZOOMS)
    ]


def tile_times(storage: Storage, urls: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per-tile durations, cold (first pass on a fresh server) and warm, for every server."""
    apps = {
        "ours": lambda: maps_app(storage),
        "open_once": lambda: baseline_app(HFR, OpenOnceReader),
        "open_per_request": lambda: baseline_app(HFR, NetcdfReader),
    }
    stats: dict[str, dict[str, list[float]]] = {}
    for name, make in apps.items():
        clear_open_cache()
        close_open_once()
        with _serve(make()) as base, httpx.Client() as client:
            passes = [_tile_pass(base, urls, client)[0] for _ in range(ROUNDS)]
        stats[name] = {"cold": passes[0], "warm": [x for p in passes[1:] for x in p]}
    close_open_once()
    return stats


def tile_results(stats: dict[str, dict[str, list[float]]], n_tiles: int) -> list[Result]:
    results: list[Result] = []
    for phase in ("cold", "warm"):
        ours = stats["ours"][phase]
        if not ours:
            continue
        detail = {
            "tiles": n_tiles,
            "zooms": ZOOMS,
            "grid": "HF radar u, 2197x1399, 1 time",
            **{f"{name}_mean_s": float(np.mean(s[phase])) for name, s in stats.items()},
        }
        for name, suffix, label in (
            ("open_once", "", OPEN_ONCE),
            ("open_per_request", "_vs_open_per_request", OPEN_PER_REQUEST),
        ):
            results.extend(
                Result(
                    name=f"tile_{phase}_p{q}{suffix}",
                    baseline=label,
                    ours_s=_pct(ours, q),
                    baseline_s=_pct(stats[name][phase], q),
                    rows=len(ours),
                    detail=detail,
                )
                for q in (50, 95)
            )
    return results


PointFn = Callable[[float, float], np.ndarray]


def _each_point(points: list[tuple[float, float]], fn: PointFn) -> tuple[list[float], list[Any]]:
    """Every point's own duration, and the values it read."""
    times, out = [], []
    for lon, lat in points:
        start = time.perf_counter()
        out.append(fn(lon, lat))
        times.append(time.perf_counter() - start)
    return times, out


def point_times(storage: Storage, points: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Per-point durations in process: ours, the file opened once, the file opened per point."""

    def ours(lon: float, lat: float) -> np.ndarray:
        ds = open_grid(storage, "mw-sst")
        return ds.sst.sel(longitude=lon, latitude=lat, method="nearest").values

    def kept_open(lon: float, lat: float) -> np.ndarray:
        ds = open_once(str(MW_SST))
        return ds.sst.sel(longitude=lon + 360.0, latitude=lat, method="nearest").values

    def per_point(lon: float, lat: float) -> np.ndarray:
        with xr.open_dataset(MW_SST) as ds:
            return ds.sst.sel(longitude=lon + 360.0, latitude=lat, method="nearest").values

    clear_open_cache()
    close_open_once()
    times: dict[str, list[float]] = {}
    values: dict[str, list[Any]] = {}
    for name, fn in (("ours", ours), ("open_once", kept_open), ("open_per_point", per_point)):
        times[name], values[name] = _each_point(points, fn)
    close_open_once()
    for name in ("open_once", "open_per_point"):
        for x, y in zip(values["ours"], values[name], strict=True):
            np.testing.assert_array_equal(np.ravel(x), np.ravel(y))
    return times


def edr_times(storage: Storage, points: list[tuple[float, float]]) -> list[float]:
    clear_open_cache()
    with _serve(maps_app(storage)) as base, httpx.Client() as client:
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
    return times


def point_results(storage: Storage) -> list[Result]:
    """A 60-day series at random valid cells: in process against both file readers, and
    over HTTP (EDR) against the file kept open, in process."""
    with xr.open_dataset(MW_SST) as mw:
        lons, lats = mw.longitude.values, mw.latitude.values
    rng = random.Random(6)
    points = [
        (float(lons[rng.randrange(81)]) - 360.0, float(lats[rng.randrange(81)]))
        for _ in range(POINTS)
    ]
    times = point_times(storage, points)
    times["edr_http"] = edr_times(storage, points)
    detail = {
        "series_length": 60,
        "per": "point",
        **{f"{name}_mean_s": float(np.mean(t)) for name, t in times.items()},
    }
    lines = (
        ("point_series_in_process", "ours", "open_once", "xr.open_dataset(source .nc) once"),
        (
            "point_series_in_process_vs_open_per_point",
            "ours",
            "open_per_point",
            "xr.open_dataset(source .nc) per point (weak, extra)",
        ),
        (
            "point_series_edr_http",
            "edr_http",
            "open_once",
            "xr.open_dataset(source .nc) once, in process (no HTTP)",
        ),
    )
    return [
        Result(
            name=f"{name}_p{q}",
            baseline=label,
            ours_s=_pct(times[ours], q),
            baseline_s=_pct(times[base], q),
            rows=POINTS,
            detail=detail,
        )
        for name, ours, base, label in lines
        for q in (50, 95)
    ]


def run() -> list[Result]:
    work = WORK / "tiles"
    shutil.rmtree(work, ignore_errors=True)
    storage = Storage.from_settings(Settings(root=str(work / "lake")))
    t0 = time.perf_counter()
    ingest_grid(storage, _stream("hfr", HFR))
    ingest_grid(storage, _stream("mw-sst", MW_SST))
    log.info("ingest of both grids took %.1f s", time.perf_counter() - t0)
    urls = tile_urls()
    results = tile_results(tile_times(storage, urls), len(urls))
    results.extend(point_results(storage))
    return results
