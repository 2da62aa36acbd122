"""Hostile sources: a local HTTP server sending an oversized body, a gzip bomb (as
Content-Encoding and as a .gz file), a slow drip and a sparse NetCDF. Each request fails
within its bound with an error naming it, and the raw zone and the table are unchanged."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from ingest.base import Request
from ingest.decoded import check_decoded_size
from ingest.fetch import FetchPolicy, fetch
from ingest.grids import ingest_grid
from lake.errors import FetchError, ParseError
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.ingest.support import NDBC, data_records, harvest, make_stream

GOOD = (NDBC / "data/realtime2/44029.ocean").read_bytes()
#: Small bounds so the tests are quick: 1 MB, 3 s in all, 1 s per read.
POLICY = FetchPolicy(timeout_s=1.0, retries=1, backoff_s=0.05, max_bytes=2**20, deadline_s=3.0)

Handler = Callable[[BaseHTTPRequestHandler], None]


def _oversized(h: BaseHTTPRequestHandler) -> None:
    """5 MB with no Content-Length: only counting the bytes as they come can stop it."""
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.end_headers()
    line = GOOD.splitlines(keepends=True)[-1]
    for _ in range(5 * 2**20 // len(line)):
        h.wfile.write(line)


BOMB = gzip.compress(b"0" * (64 * 2**20), compresslevel=9)  # ~64 kB inflating to 64 MB


def _send_bomb(h: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    h.send_response(200)
    for name, value in {**headers, "Content-Length": str(len(BOMB))}.items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(BOMB)


def _bomb_encoded(h: BaseHTTPRequestHandler) -> None:
    """The bomb as a gzip transfer encoding of a text response."""
    _send_bomb(h, {"Content-Type": "text/plain", "Content-Encoding": "gzip"})


def _bomb_file(h: BaseHTTPRequestHandler) -> None:
    """The bomb as a gzip file."""
    _send_bomb(h, {"Content-Type": "application/x-gzip"})


def _drip(h: BaseHTTPRequestHandler) -> None:
    """One byte every 0.4 s: every read is answered within the read timeout, forever."""
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.end_headers()
    for i in range(10_000):
        h.wfile.write(GOOD[i % len(GOOD) : i % len(GOOD) + 1])
        h.wfile.flush()
        time.sleep(0.4)


class HostileServer:
    def __init__(self, routes: dict[str, Handler]) -> None:
        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                try:
                    if route is None:
                        self.send_error(404)
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the harvester hung up, as it should

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer(
        {
            "/big/data/realtime2/44029.ocean": _oversized,
            "/bomb/data/realtime2/44029.ocean": _bomb_encoded,
            "/bombfile/data/realtime2/44029.ocean": _bomb_file,
            "/drip/data/realtime2/44029.ocean": _drip,
        }
    )
    yield server
    server.httpd.shutdown()


def lake_data(root: Path) -> dict[str, str]:
    """Hashes of the raw zone and the observation table (the harvest log may grow)."""
    out = {}
    for part in ("raw", "tables/observations"):
        for dirpath, _dirs, files in os.walk(root / part):
            for name in files:
                path = Path(dirpath) / name
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize(
    ("prefix", "words", "within_s"),
    [
        ("/big", "more than 1.0 MB", 3.0),
        ("/bomb", "more than 1.0 MB", 3.0),
        ("/bombfile", "inflates to more than 1.0 MB", 3.0),
        ("/drip", "deadline of 3 s", 6.0),
    ],
)
def test_hostile_source_fails_its_request_and_leaves_the_lake(
    hostile: HostileServer, tmp_path: Path, prefix: str, words: str, within_s: float
) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    stream = make_stream(
        "hostile-44029",
        {"kind": "ndbc", "url": hostile.url + prefix, "file": "ocean", "stations": ["44029"]},
    )
    ObservationTable(storage).create()
    before = lake_data(tmp_path / "lake")
    started = time.monotonic()
    [record] = data_records(harvest(storage, stream, conditional=False, policy=POLICY))
    took = time.monotonic() - started
    assert record.status == "fetch_failed", record
    assert words in (record.error or ""), record.error
    assert "hostile-44029" in (record.error or "")
    assert took < within_s + 2.0, took
    assert lake_data(tmp_path / "lake") == before


def test_the_registry_bound_applies(hostile: HostileServer) -> None:
    stream = make_stream(
        "bounded",
        {"kind": "ndbc", "url": hostile.url + "/big", "file": "ocean", "max_bytes": 4096},
    )
    policy = FetchPolicy(retries=0, deadline_s=10).for_stream(stream)
    assert policy.max_bytes == 4096
    with pytest.raises(FetchError, match=r"more than 0\.0 MB"):
        fetch(
            "bounded", Request(url=hostile.url + "/big/data/realtime2/44029.ocean"), policy=policy
        )


def sparse_netcdf(path: Path) -> Path:
    """A NetCDF-4 file of a few kB declaring a 9.6 GB variable (chunks never written)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 300)
        nc.createDimension("lat", 2000)
        nc.createDimension("lon", 4000)
        for name, size in (("lat", 2000), ("lon", 4000)):
            v = nc.createVariable(name, "f4", (name,))
            v[:] = np.linspace(-80 if name == "lat" else -180, 80 if name == "lat" else 180, size)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2024-01-01"
        t[:] = np.arange(300)
        sst = nc.createVariable(
            "sst", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 500, 500), fill_value=0
        )
        sst.standard_name = "sea_surface_temperature"
        sst.units = "degC"
    return path


def test_sparse_netcdf_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    nc = sparse_netcdf(tmp_path / "sparse.nc")
    assert nc.stat().st_size < 1_000_000
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    stream = make_stream("sparse-grid", {"kind": "netcdf", "url": nc.as_uri()}, category="federal")
    started = time.monotonic()
    with pytest.raises(ParseError, match=r"decodes to 8\.94 GB"):
        ingest_grid(storage, stream)
    assert time.monotonic() - started < 10
    assert not GridStore(storage, "sparse-grid").exists()
    assert not (tmp_path / "lake" / "grids" / "sparse-grid").exists()


def test_decoded_size_limit_names_both_sizes(tmp_path: Path) -> None:
    import xarray as xr

    ds = xr.Dataset({"v": ("x", np.zeros(1000, dtype="f8"))})
    assert check_decoded_size(ds, source="s", url="u", limit=8000) is ds
    with pytest.raises(ParseError, match="more than the"):
        check_decoded_size(ds, source="s", url="u", limit=7999)
