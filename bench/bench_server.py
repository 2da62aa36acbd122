"""Bounded load test of `lake serve` on 127.0.0.1: tabledap, SQL and tile requests.

The server runs in its own process (uvicorn, one worker) over a synthetic network of 40
stations x 10 variables x 60 days of 6-minute data (5.8 M values) plus a real grid (ERSST v4).
Each kind of request is sent REQUESTS times from CONCURRENCY client threads, stopped early
after TIME_CAP_S. Reported: throughput, median and p95 latency, error count. The baseline is the
same answer computed in-process without a server (Lake.series / Lake.sql), what a notebook
user would run instead. `ours_s` is wall time per request under load (1 / throughput), so the
ratio shows what serving costs per answer; median and p95 latency (which include queueing behind
CONCURRENCY clients) are in the detail.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import xarray as xr

from bench.common import WORK, Result, machine, timed
from bench.synthetic import Network, long_rows
from lake.reader import Lake
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable

log = logging.getLogger(__name__)

REQUESTS = 200
CONCURRENCY = 8
TIME_CAP_S = 60.0
NET = Network(stations=40, days=60)
ERSST = Path(__file__).resolve().parent.parent / "tests" / "data" / "grids" / "ersst.v4.201606.nc"


def build_lake(root: Path) -> Storage:
    storage = Storage.from_settings(Settings(root=str(root)))
    table = ObservationTable(storage)
    for start in range(0, NET.stations, 10):
        table.append(long_rows(NET, range(start, min(start + 10, NET.stations))))
    from lake.grids import GridStore

    with xr.open_dataset(ERSST) as ds:
        GridStore(storage, "ersst").write(ds.load(), "bench grid")
    return storage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LAKE_ROOT": str(root)}
    code = f"from coastlake.server.app import run; run(host='127.0.0.1', port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("bench server did not start")


def load(base: str, make_url: Callable[[random.Random], str]) -> dict[str, float]:
    """Send REQUESTS requests from CONCURRENCY threads (stop at TIME_CAP_S); latency stats."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    issued = 0
    started = time.perf_counter()

    def worker(seed: int) -> None:
        nonlocal errors, issued
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=30) as client:
            while True:
                with lock:
                    if issued >= REQUESTS or time.perf_counter() - started > TIME_CAP_S:
                        return
                    issued += 1
                t0 = time.perf_counter()
                try:
                    ok = client.get(make_url(rng)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    arr = np.array(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 2),
        "median_s": round(float(np.median(arr)), 4),
        "p95_s": round(float(np.percentile(arr, 95)), 4),
        "service_s": round(wall / max(1, len(latencies)), 4),
        "concurrency": CONCURRENCY,
    }


def tabledap_url(rng: random.Random) -> str:
    sid = NET.station_ids()[rng.randrange(NET.stations)]
    day = datetime(2023, 1, 1) + timedelta(days=rng.randrange(NET.days - 7))
    end = day + timedelta(days=7)
    return (
        "/erddap/tabledap/bench-network.csv?station,time,sea_water_temperature,wind_speed"
        f'&station="{sid}"&time>={day:%Y-%m-%dT%H:%M:%SZ}&time<={end:%Y-%m-%dT%H:%M:%SZ}'
    )


def sql_query(rng: random.Random) -> str:
    day = datetime(2023, 1, 1) + timedelta(days=rng.randrange(NET.days - 1))
    return (
        "SELECT station_id, avg(value) AS mean FROM observations "
        "WHERE variable = 'sea_water_temperature' "
        f"AND time >= TIMESTAMP '{day:%Y-%m-%d}' AND time < TIMESTAMP '{day:%Y-%m-%d}' "
        "+ INTERVAL 1 DAY GROUP BY station_id"
    )


def run() -> list[Result]:
    work = WORK / "server"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "lake"
    t0 = time.perf_counter()
    storage = build_lake(root)
    rows = int(Lake(storage).sql("SELECT count(*) AS n FROM observations_all")["n"][0].as_py())
    log.info("bench lake of %d values built in %.1f s", rows, time.perf_counter() - t0)
    port = free_port()
    proc = start_server(root, port)
    base = f"http://127.0.0.1:{port}"
    try:
        grids = httpx.get(f"{base}/api/grids", timeout=30).json()
        tile_template = next(g for g in grids if g["id"] == "ersst/sst")["tiles"]
        tile_time = next(g for g in grids if g["id"] == "ersst/sst")["times"][0]

        def tile_url(rng: random.Random) -> str:
            z = 2
            x, y = rng.randrange(2**z), rng.randrange(2**z)
            return (
                tile_template.replace("{z}", str(z))
                .replace("{x}", str(x))
                .replace("{y}", str(y))
                .replace("{time}", tile_time)
            )

        def sql_url(rng: random.Random) -> str:
            return str(httpx.URL("/sql", params={"q": sql_query(rng)}))

        # warm up each route once (first DuckDB views, first tile read)
        for make in (tabledap_url, sql_url, tile_url):
            httpx.get(base + make(random.Random(0)), timeout=60)
        stats = {
            "tabledap": load(base, tabledap_url),
            "sql": load(base, sql_url),
            "tiles": load(base, tile_url),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    lk = Lake(storage)
    rng = random.Random(1)

    def series_once() -> object:
        sid = NET.station_ids()[rng.randrange(NET.stations)]
        day = datetime(2023, 1, 1) + timedelta(days=rng.randrange(NET.days - 7))
        return lk.series(
            "bench-network",
            sid,
            day,
            day + timedelta(days=7),
            ["sea_water_temperature", "wind_speed"],
        )

    series_s, _ = timed(series_once, repeat=7)
    sql_s, _ = timed(lambda: lk.sql(sql_query(rng)), repeat=7)
    env = machine()
    results = [
        Result(
            name="tabledap station-week csv over HTTP (wall time per request under load)",
            baseline="in-process Lake.series, no server",
            ours_s=stats["tabledap"]["service_s"],
            baseline_s=series_s,
            rows=rows,
            detail={**stats["tabledap"], "machine": env},
        ),
        Result(
            name="sql daily mean over all stations over HTTP (wall time per request under load)",
            baseline="in-process DuckDB (Lake.sql over delta_scan), no server",
            ours_s=stats["sql"]["service_s"],
            baseline_s=sql_s,
            rows=rows,
            detail={**stats["sql"], "machine": env},
        ),
        Result(
            name="map tile z2 png (ERSST) over HTTP (wall time per request under load)",
            baseline="none (no other tile server here)",
            ours_s=stats["tiles"]["service_s"],
            baseline_s=None,
            rows=0,
            detail={**stats["tiles"], "machine": env},
        ),
    ]
    return results
