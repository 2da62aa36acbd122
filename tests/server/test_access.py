"""SQL results in every format, downloads (station, grid, layer, raw), and operations routes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from lake.reader import Lake
from tests.server.conftest import ADMIN_TOKEN, RunningServer

DATASET = "ndbc-44029-ocean"
STATION = "urn:ioos:station:wmo:44029"


def test_sql_formats_agree(client: httpx.Client, server: RunningServer) -> None:
    q = "SELECT station_id, count(*) AS n FROM observations GROUP BY 1 ORDER BY 1"
    expected = Lake(server.lake.storage).sql(q).to_pylist()
    doc = client.get("/sql", params={"q": q}).json()
    assert doc["rows"] == expected and not doc["truncated"]
    csv = client.get("/sql", params={"q": q, "format": "csv"}).text.splitlines()
    assert csv[0] == '"station_id","n"' and len(csv) == len(expected) + 1
    parquet = pq.read_table(
        io.BytesIO(client.get("/sql", params={"q": q, "format": "parquet"}).content)
    )
    assert parquet.to_pylist() == expected
    arrow = client.post("/sql", json={"query": q, "format": "arrow"}).content
    assert pa.ipc.open_stream(arrow).read_all().to_pylist() == expected


def test_sql_row_limit_truncates(client: httpx.Client) -> None:
    r = client.get("/sql", params={"q": "SELECT * FROM observations_all", "limit": "5"})
    doc = r.json()
    assert doc["row_count"] == 5 and doc["truncated"] is True
    assert r.headers["x-truncated"] == "true"


def test_sql_masks_failed_values_in_observations(client: httpx.Client) -> None:
    q = "SELECT count(*) AS n FROM observations WHERE qc_agg = 4 AND value IS NOT NULL"
    assert client.get("/sql", params={"q": q}).json()["rows"] == [{"n": 0}]
    q = "SELECT count(*) AS n FROM observations_all WHERE qc_agg = 4 AND value IS NOT NULL"
    assert client.get("/sql", params={"q": q}).json()["rows"][0]["n"] >= 1


def test_station_netcdf_download(client: httpx.Client, tmp_path: Path) -> None:
    r = client.get(
        f"/data/stations/{DATASET}.nc",
        params={
            "station": STATION,
            "start": "2022-06-01",
            "end": "2022-06-02",
            "variables": "sea_water_temperature",
        },
    )
    assert r.status_code == 200, r.text
    (tmp_path / "s.nc").write_bytes(r.content)
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert ds.attrs["featureType"] == "timeSeries"
        assert ds.attrs["license"] == "CC-BY-4.0"
        names = list(ds.data_vars)
        assert names[:2] == ["sea_water_temperature", "sea_water_temperature_qc_agg"]
        # Every QARTOD test's flag beside the aggregate, each tied to the value.
        assert "sea_water_temperature_qc_gross_range" in names
        assert ds["sea_water_temperature"].attrs["ancillary_variables"].split() == names[1:]
        assert ds["sea_water_temperature"].attrs["units"] == "degC"
        assert str(ds["time"].values.min())[:10] == "2022-06-01"
        assert 20 <= ds.sizes["time"] <= 25


def test_station_csv_json_parquet_downloads(client: httpx.Client) -> None:
    params = {"station": STATION, "start": "2022-06-01", "end": "2022-06-02"}
    rows = client.get(f"/data/stations/{DATASET}.json", params=params).json()["rows"]
    assert rows and {r["variable"] for r in rows} == {
        "sea_water_temperature",
        "sea_water_practical_salinity",
    }
    csv = client.get(f"/data/stations/{DATASET}.csv", params=params).text.splitlines()
    assert len(csv) == len(rows) + 1
    table = pq.read_table(
        io.BytesIO(client.get(f"/data/stations/{DATASET}.parquet", params=params).content)
    )
    assert table.num_rows == len(rows)


def test_raw_response_of_a_value(client: httpx.Client, server: RunningServer) -> None:
    raw_id = (
        Lake(server.lake.storage)
        .sql("SELECT raw_id FROM observations_all WHERE dataset_id = ? LIMIT 1", [DATASET])
        .column("raw_id")[0]
        .as_py()
    )
    r = client.get(f"/data/raw/{DATASET}/{raw_id}")
    assert r.status_code == 200
    recorded = (
        Path(__file__).parent.parent / "data/server/www.ndbc.noaa.gov/data/realtime2/44029.ocean"
    )
    assert r.content == recorded.read_bytes()
    assert client.get(f"/data/raw/{DATASET}/{'f' * 64}").status_code == 404


def test_grid_subset_netcdf(client: httpx.Client, tmp_path: Path) -> None:
    r = client.get("/data/grids/ersst.nc", params={"variables": "sst", "bbox": "-80,30,-60,46"})
    assert r.status_code == 200, r.text
    (tmp_path / "g.nc").write_bytes(r.content)
    with xr.open_dataset(tmp_path / "g.nc") as ds:
        assert list(ds.data_vars) == ["sst"]
        assert float(ds["lat"].min()) >= 30 and float(ds["lat"].max()) <= 46
        assert 0 < ds.sizes["lon"] <= 11
    bad = client.get("/data/grids/ersst.nc", params={"variables": "nope"})
    assert bad.status_code == 400 and "has no variable" in bad.text


def test_layer_geojson_and_shapefile(client: httpx.Client) -> None:
    gj = client.get("/data/layers/ca-state.geojson").json()
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 1
    z = zipfile.ZipFile(io.BytesIO(client.get("/data/layers/ca-state.shp.zip").content))
    assert {"ca-state.shp", "ca-state.dbf", "ca-state.prj"} <= set(z.namelist())


def test_healthz_metrics_and_status(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    client.get("/erddap/tabledap/rt-buoys.csv?station")
    text = client.get("/metrics").text
    assert (
        'lake_http_requests_total{method="GET",route="/erddap/tabledap/{name}",status="200"}'
        in text
    )
    assert "lake_http_request_duration_seconds_bucket" in text
    assert 'lake_stream_data_age_seconds{stream="rt-buoys"}' in text
    assert 'lake_qc_values{dataset="rt-buoys",flag="fail"} 1.0' in text
    status = {s["stream_id"]: s for s in client.get("/status.json").json()}
    assert status["rt-buoys"]["age_hours"] < 1
    assert status[DATASET]["last_attempt"] is not None and status[DATASET]["rows"] > 2000
    assert status[DATASET]["qc"]["pass"] > 0
    page = client.get("/status").text
    assert "ndbc-44029-ocean" in page and "<table id='streams'>" in page


def test_portal_api_states(client: httpx.Client) -> None:
    features = client.get("/api/stations").json()["features"]
    states = {f["properties"]["station_id"]: f["properties"]["state"] for f in features}
    assert states["urn:ioos:station:test:fresh"] == "active"
    assert states["urn:ioos:station:test:stale"] == "stale"
    assert states["urn:ioos:station:test:offline"] == "offline"
    assert states[STATION] == "offline"
    doc = client.get("/api/datasets/rt-buoys").json()
    assert doc["citation"].startswith("Test Ocean Observing") and doc["qc"]["fail"] == 1
    series = client.get(
        "/api/series/rt-buoys",
        params={"station": "urn:ioos:station:test:fresh", "variable": "sea_water_temperature"},
    ).json()
    assert len(series["time"]) == 24 and series["qc"].count(4) == 1 and 99.0 in series["value"]
    grids = client.get("/api/grids").json()
    assert {g["id"] for g in grids} == {"ersst/sst", "ersst/ssta"}
    assert [g["title"] for g in client.get("/api/datasets", params={"q": "salinity"}).json()] == [
        "NERACOOS Buoy A01 Massachusetts Bay: oceanographic data (via NDBC)"
    ]


def test_admin_harvest_with_the_token(client: httpx.Client) -> None:
    r = client.post(
        "/admin/harvest/ndbc-44029-ocean", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert r.status_code == 200 and r.json()["status"] == "started"
    r = client.post(
        "/admin/harvest/no-such-stream", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert r.status_code == 404 and "no stream" in r.json()["error"]


def test_stac_and_tiles_are_mounted_when_present(client: httpx.Client) -> None:
    services = client.get("/api/services").json()
    if services.get("stac"):
        assert client.get("/stac/").status_code == 200
    if services.get("tiles"):
        grids = client.get("/api/grids").json()
        url = (
            grids[0]["tiles"]
            .replace("{z}/{x}/{y}", "0/0/0")
            .replace("{time}", grids[0]["times"][0])
        )
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
    assert json.loads(json.dumps(services))  # the portal reads it as JSON


def test_admin_publish_workflow_with_the_token(client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = client.post("/admin/publish/draft-stream/request", headers=auth, json={"by": "Ada"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "review"
    r = client.post("/admin/publish/draft-stream/delete", headers=auth, json={"by": "Ada"})
    assert r.status_code == 400 and "unknown publish action" in r.json()["error"]
    # still not public until approved
    assert client.get("/erddap/search/index.csv", params={"searchFor": "draft"}).status_code == 404
