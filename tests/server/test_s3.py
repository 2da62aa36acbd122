"""The same server over a lake in S3 (moto's server on 127.0.0.1): tabledap, SQL, portal JSON."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn

from lake.series import SeriesTable
from lake.settings import Settings
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.server.conftest import REGISTRY, RT_STATIONS, free_port, realtime_rows

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def test_server_over_s3(s3_settings: Settings, tmp_path: Path) -> None:
    from coastlake.server.app import create_app

    # The test registry: its rt-buoys dataset is published, so its stations are on the map.
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    s3_settings = s3_settings.model_copy(update={"registry": str(registry)})
    storage = Storage.from_settings(s3_settings)
    rows = realtime_rows(datetime.now(UTC).replace(tzinfo=None))
    ObservationTable(storage).write(rows)
    SeriesTable(storage).update(rows)  # as the harvest job keeps it
    StationTable(storage).upsert(
        "rt-buoys",
        [
            {"station_id": sid, "name": k, "lon": lon, "lat": lat}
            for k, (sid, lon, lat, _a) in RT_STATIONS.items()
        ],
    )
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            create_app(storage, s3_settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60) as client:
            r = client.get(
                "/erddap/tabledap/rt-buoys.csvp?station,time,sea_water_temperature"
                '&orderByMax("station,time")'
            )
            assert r.status_code == 200, r.text
            df = pd.read_csv(io.StringIO(r.text))
            assert len(df) == 3 and "sea_water_temperature (degree_Celsius)" in df.columns
            rows = client.get("/sql", params={"q": "SELECT count(*) AS n FROM observations_all"})
            assert rows.json()["rows"] == [{"n": 72}], rows.text
            states = {
                f["properties"]["station_id"]: f["properties"]["state"]
                for f in client.get("/api/stations").json()["features"]
            }
            assert states[RT_STATIONS["stale"][0]] == "stale"
            nc = client.get(
                "/data/stations/rt-buoys.nc", params={"station": RT_STATIONS["fresh"][0]}
            )
            assert nc.status_code == 200 and nc.content[:4] == b"\x89HDF"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
