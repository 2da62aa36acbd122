"""Bounded load test of `lake serve` on 127.0.0.1: tabledap, SQL and tile requests.

The server runs in its own process (uvicorn, one worker) over a synthetic network of 40
stations x 10 variables x 60 days of 6-minute data (5.8 M values) plus a real grid (ERSST v4).

Latency is per request: each request's own duration (time.perf_counter around the HTTP call,
in the thread that made it), reported as p50 and p95. Each kind of request is sent twice:
- one client, REQUESTS requests one after another: latency without queueing, compared with
  the baseline, the same answers computed in-process without a server (Lake.series /
  Lake.sql, what a notebook user would run instead), each call timed on its own, over the
  same drawn requests;
- CONCURRENCY client threads sharing REQUESTS requests: latency under load (it includes
  waiting behind the other clients), still against the baseline's per-call p50/p95.
Throughput (answered requests / wall time of the pass) is reported separately, in the detail,
never as a latency. Every pass stops early after TIME_CAP_S.

Size knobs: BENCH_SERVER_REQUESTS, BENCH_SERVER_CONCURRENCY, BENCH_SERVER_TIME_CAP_S,
BENCH_SERVER_STATIONS, BENCH_SERVER_DAYS (more than 7).
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import xarray as xr

from bench.common import WORK, Result, machine
from bench.synthetic import Network, long_rows
from lake.reader import Lake
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable

log = logging.getLogger(__name__)

REQUESTS = int(os.environ.get("BENCH_SERVER_REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_SERVER_CONCURRENCY", "8"))
TIME_CAP_S = float(os.environ.get("BENCH_SERVER_TIME_CAP_S", "60"))
NET = Network(
    stations=int(os.environ.get("BENCH_SERVER_STATIONS", "40")),
    days=int(os.environ.get("BENCH_SERVER_DAYS", "60")),
)
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
    # One load generator on one address: the per-client limit (6 at once) would answer its
    # concurrent requests 429 and time the refusals, so the limits are set to the load.
    env = {
        **os.environ,
        "LAKE_ROOT": str(root),
        "LAKE_MAX_REQUESTS": str(max(16, CONCURRENCY)),
        "LAKE_MAX_REQUESTS_PER_CLIENT": str(CONCURRENCY),
    }
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


@dataclass(frozen=True)
class Route:
    """One kind of request: its drawn parameters, its URL and the same answer in process."""

    label: str
    draw: Callable[[random.Random], Any]
    url: Callable[[Any], str]
    local: Callable[[Lake, Any], object] | None = None
    baseline: str = "none (no other tile server here)"


@dataclass
class Pass:
    """Per-request durations of one pass (answered requests only) and its wall time."""

    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    def pct(self, q: float) -> float:
        return round(float(np.percentile(np.asarray(self.latencies), q)), 5)

    def stats(self) -> dict[str, float]:
        n = len(self.latencies)
        return {
            "clients": self.clients,
            "requests": n,
            "errors": self.errors,
            "p50_s": self.pct(50),
            "p95_s": self.pct(95),
            "mean_s": round(float(np.mean(self.latencies)), 5),
            "wall_s": round(self.wall_s, 3),
            "throughput_rps": round(n / self.wall_s, 2) if self.wall_s > 0 else 0.0,
        }


def http_pass(base: str, route: Route, clients: int) -> Pass:
    """REQUESTS requests shared by `clients` threads (stop at TIME_CAP_S), each timed alone.

    Thread i draws its requests from random.Random(i), so the one-client pass sends the
    sequence that `local_pass` computes in process."""
    result = Pass(clients=clients)
    lock = threading.Lock()
    issued = 0
    started = time.perf_counter()

    def worker(seed: int) -> None:
        nonlocal issued
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=30) as client:
            while True:
                with lock:
                    if issued >= REQUESTS or time.perf_counter() - started > TIME_CAP_S:
                        return
                    issued += 1
                url = route.url(route.draw(rng))
                t0 = time.perf_counter()
                try:
                    ok = client.get(url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    if ok:
                        result.latencies.append(elapsed)
                    else:
                        result.errors += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - started
    return result


def local_pass(lake: Lake, route: Route, n: int) -> Pass:
    """The baseline: the same `n` requests as the one-client pass, in process, one call at a
    time, each timed alone (after one untimed warm-up call)."""
    assert route.local is not None
    route.local(lake, route.draw(random.Random(99)))
    result = Pass(clients=1)
    rng = random.Random(0)
    started = time.perf_counter()
    for _ in range(n):
        if time.perf_counter() - started > TIME_CAP_S:
            break
        params = route.draw(rng)
        t0 = time.perf_counter()
        route.local(lake, params)
        result.latencies.append(time.perf_counter() - t0)
    result.wall_s = time.perf_counter() - started
    return result


def draw_tabledap(rng: random.Random) -> tuple[str, datetime]:
    sid = NET.station_ids()[rng.randrange(NET.stations)]
    return sid, datetime(2023, 1, 1) + timedelta(days=rng.randrange(NET.days - 7))


def tabledap_url(params: tuple[str, datetime]) -> str:
    sid, day = params
    end = day + timedelta(days=7)
    return (
        "/erddap/tabledap/bench-network.csv?station,time,sea_water_temperature,wind_speed"
        f'&station="{sid}"&time>={day:%Y-%m-%dT%H:%M:%SZ}&time<={end:%Y-%m-%dT%H:%M:%SZ}'
    )


def tabledap_local(lake: Lake, params: tuple[str, datetime]) -> object:
    sid, day = params
    variables = ["sea_water_temperature", "wind_speed"]
    return lake.series("bench-network", sid, day, day + timedelta(days=7), variables)


def sql_query(rng: random.Random) -> str:
    day = datetime(2023, 1, 1) + timedelta(days=rng.randrange(NET.days - 1))
    return (
        "SELECT station_id, avg(value) AS mean FROM observations "
        "WHERE variable = 'sea_water_temperature' "
        f"AND time >= TIMESTAMP '{day:%Y-%m-%d}' AND time < TIMESTAMP '{day:%Y-%m-%d}' "
        "+ INTERVAL 1 DAY GROUP BY station_id"
    )


def routes(base: str) -> list[Route]:
    grids = httpx.get(f"{base}/api/grids", timeout=30).json()
    grid = next(g for g in grids if g["id"] == "ersst/sst")
    template = grid["tiles"].replace("{z}", "2").replace("{time}", grid["times"][0])
    return [
        Route(
            "tabledap station-week csv over HTTP",
            draw_tabledap,
            tabledap_url,
            tabledap_local,
            "in-process Lake.series, no server, per call",
        ),
        Route(
            "sql daily mean over all stations over HTTP",
            sql_query,
            lambda q: str(httpx.URL("/sql", params={"q": q})),
            lambda lake, q: lake.sql(q),
            "in-process DuckDB (Lake.sql over delta_scan), no server, per call",
        ),
        Route(
            "map tile z2 png (ERSST) over HTTP",
            lambda rng: (rng.randrange(4), rng.randrange(4)),
            lambda xy: template.replace("{x}", str(xy[0])).replace("{y}", str(xy[1])),
        ),
    ]


def route_results(route: Route, passes: dict[str, Pass], rows: int) -> list[Result]:
    """p50 and p95 per request, one client and under load, against the baseline's per call."""
    local = passes.get("local")
    detail: dict[str, Any] = {name: p.stats() for name, p in passes.items()}
    detail["machine"] = machine()
    phases = (("sequential", "1 client"), ("loaded", f"{CONCURRENCY} clients"))
    return [
        Result(
            name=f"{route.label}: p{q} latency per request, {clients}",
            baseline=route.baseline,
            ours_s=passes[name].pct(q),
            baseline_s=None if local is None else local.pct(q),
            rows=rows if local is not None else 0,
            detail=detail,
        )
        for name, clients in phases
        for q in (50, 95)
    ]


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
        kinds = routes(base)
        for route in kinds:  # warm up each route once (first DuckDB views, first tile read)
            httpx.get(base + route.url(route.draw(random.Random(0))), timeout=60)
        passes: list[dict[str, Pass]] = [
            {"sequential": http_pass(base, r, 1), "loaded": http_pass(base, r, CONCURRENCY)}
            for r in kinds
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lake = Lake(storage)  # the baseline runs with the server stopped
    results: list[Result] = []
    for route, p in zip(kinds, passes, strict=True):
        if route.local is not None:
            seq = p["sequential"]
            p["local"] = local_pass(lake, route, len(seq.latencies) + seq.errors)
        results.extend(route_results(route, p, rows))
    return results
