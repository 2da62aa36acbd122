"""A real lake (NDBC 44029 harvested from a recorded file, plus three real-time stations with
fresh, 5-hour-old and 2-week-old data) served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import uvicorn

from coastlake.harvest import run_harvest
from lake.registry import load_registry
from lake.series import SeriesTable
from lake.settings import Settings
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import ObservationTable

DATA = Path(__file__).resolve().parent.parent / "data" / "server"
ADMIN_TOKEN = "test-admin-token-5b1c"

REGISTRY = """
streams:
  - id: ndbc-44029-ocean
    title: "NERACOOS Buoy A01 Massachusetts Bay: oceanographic data (via NDBC)"
    summary: Water temperature and salinity at 1 m from NERACOOS buoy A01.
    provider: {name: NERACOOS, url: "http://www.neracoos.org"}
    category: regional
    kind: timeseries
    data_stream_plan: "https://neracoos.org/dsp/a01"
    source:
      kind: ndbc
      url: data/www.ndbc.noaa.gov
      file: ocean
      stations:
        - {id: "44029", name: "Buoy A01 - Massachusetts Bay", lat: 42.523, lon: -70.566}
    license: "CC-BY-4.0"
    citation: "NERACOOS (2022): Buoy A01 oceanographic data, distributed by NOAA NDBC."
    keywords: [buoy, water temperature, salinity]
    publication: published
  - id: rt-buoys
    title: "Real-time test buoys"
    summary: Three buoys reporting now, five hours ago and two weeks ago.
    provider: {name: Test Ocean Observing}
    category: regional
    kind: timeseries
    data_stream_plan: "https://example.org/dsp/rt"
    source: {kind: ndbc, url: data/www.ndbc.noaa.gov, file: ocean}
    license: "CC-BY-4.0"
    citation: "Test Ocean Observing (2026): real-time buoys."
    keywords: [realtime]
    publication: published
  - id: draft-stream
    title: "A draft stream"
    provider: {name: Test}
    category: regional
    kind: timeseries
    data_stream_plan: "x"
    source: {kind: ndbc, url: data/www.ndbc.noaa.gov, file: ocean}
    publication: draft
"""

RT_STATIONS = {
    "fresh": ("urn:ioos:station:test:fresh", -70.0, 42.0, timedelta(minutes=20)),
    "stale": ("urn:ioos:station:test:stale", -69.5, 42.8, timedelta(hours=5)),
    "offline": ("urn:ioos:station:test:offline", -69.0, 43.3, timedelta(days=14)),
}


@dataclass
class LakeFixture:
    settings: Settings
    storage: Storage
    root: Path
    now: datetime


def realtime_rows(now: datetime) -> pa.Table:
    """Hourly sea water temperature for 24 h up to each station's last report; one failed value."""
    rows = []
    for key, (station_id, lon, lat, age) in RT_STATIONS.items():
        last = (now - age).replace(microsecond=0)
        for h in range(24):
            t = last - timedelta(hours=23 - h)
            value, flag = 10.0 + h * 0.1 + (0 if key != "stale" else 5), 1
            if key == "fresh" and h == 12:
                value, flag = 99.0, 4  # a spike that failed QC
            rows.append(
                {
                    "dataset_id": "rt-buoys",
                    "station_id": station_id,
                    "time": t,
                    "z": -1.0,
                    "lon": lon,
                    "lat": lat,
                    "variable": "sea_water_temperature",
                    "value": value,
                    "units": "degree_Celsius",
                    "qc_agg": flag,
                    "raw_id": "0" * 64,
                }
            )
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="session")
def lake_fixture(tmp_path_factory: pytest.TempPathFactory) -> LakeFixture:
    base = tmp_path_factory.mktemp("server-lake")
    shutil.copytree(DATA / "www.ndbc.noaa.gov", base / "data" / "www.ndbc.noaa.gov")
    (base / "registry.yaml").write_text(REGISTRY)
    settings = Settings(
        root=str(base / "lake"), registry=str(base / "registry.yaml"), admin_token=ADMIN_TOKEN
    )
    storage = Storage.from_settings(settings)
    registry = load_registry(base / "registry.yaml")
    records = run_harvest(storage, registry, registry.streams[:1], progress=False)
    # The data file must harvest; optional side fetches (station metadata) may be absent here.
    assert any(r.status == "ok" and r.rows_added > 0 for r in records), records
    now = datetime.now(UTC).replace(tzinfo=None)
    # Written as the harvest job writes: the rows, then the series state it keeps beside them.
    rows = realtime_rows(now)
    ObservationTable(storage).write(rows)
    SeriesTable(storage).update(rows)
    StationTable(storage).upsert(
        "rt-buoys",
        [
            {"station_id": sid, "name": f"Test buoy {key}", "lon": lon, "lat": lat}
            for key, (sid, lon, lat, _age) in RT_STATIONS.items()
        ],
    )
    add_grid_and_layer(storage)
    return LakeFixture(settings, storage, base, now)


GRID_DATA = Path(__file__).resolve().parent.parent / "data" / "grids"


def add_grid_and_layer(storage: Storage) -> None:
    """A real grid (NOAA ERSST v4, June 2016) and a real vector layer (California, TIGER 2016)."""
    import xarray as xr

    from lake.grids import GridStore
    from lake.layers import ingest_layer

    with xr.open_dataset(GRID_DATA / "ersst.v4.201606.nc") as ds:
        GridStore(storage, "ersst").write(ds.load(), "test grid for the server")
    ingest_layer(storage, "ca-state", GRID_DATA / "gis" / "CA_State_TIGER2016.shp", title="CA")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    lake: LakeFixture


@pytest.fixture(scope="session")
def server(lake_fixture: LakeFixture) -> Iterator[RunningServer]:
    """The app under uvicorn on 127.0.0.1 in a thread, stopped at the end of the session."""
    from coastlake.server.app import create_app
    from coastlake.server.sql import SqlLimits

    app = create_app(lake_fixture.storage, lake_fixture.settings, sql_limits=SqlLimits(timeout_s=3))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("server did not start")
    yield RunningServer(url, lake_fixture)
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
