"""Helpers for the grid and tile tests: real files, registry streams, a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from lake.registry import Stream

DATA = Path(__file__).resolve().parent.parent / "data" / "grids"
MW_SST = DATA / "erdMWsstd1day_sst_20161017-20161217.nc"
ERSST = DATA / "ersst.v4.201606.nc"
HFR = DATA / "202506020000_hfr_uswc_1km_rtv_uwls_NDBC.nc"
ROMS = DATA / "roms_wcofs_subset_20241017.nc"
FVCOM = DATA / "fvcom_sfbofs_subset_20240523.nc"
GIS = DATA / "gis"
MPA_SHP = GIS / "MPA_CA_StateAndFederal_180905.shp"
STATE_SHP = GIS / "CA_State_TIGER2016.shp"


def grid_stream(
    stream_id: str,
    url: str | Path,
    category: str = "federal",
    kind: str = "netcdf",
    variables: list[dict[str, Any]] | None = None,
    retention: dict[str, Any] | None = None,
    **params: Any,
) -> Stream:
    """A `kind: grid` registry stream as the YAML would give it."""
    if isinstance(url, Path):
        url = url.resolve().as_uri()
    item: dict[str, Any] = {
        "id": stream_id,
        "title": f"test grid {stream_id}",
        "provider": {"name": "test"},
        "category": category,
        "kind": "grid",
        "source": {"kind": kind, "url": url, **params},
        "variables": variables or [],
    }
    if retention:
        item["retention"] = retention
    return Stream.model_validate(item)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:  # pragma: no cover
        raise RuntimeError("test server did not start")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
