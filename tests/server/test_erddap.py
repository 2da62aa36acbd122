"""erddapy, unchanged, against the running server; and the tabledap formats and functions."""

from __future__ import annotations

import io
import json
from datetime import datetime

import httpx
import numpy as np
import pandas as pd
import xarray as xr
from erddapy import ERDDAP

from lake.reader import Lake
from tests.server.conftest import RunningServer

DATASET = "ndbc-44029-ocean"
STATION = "urn:ioos:station:wmo:44029"
WINDOW = ("2022-06-01T00:00:00Z", "2022-06-03T00:00:00Z")


def lake_rows(server: RunningServer, variable: str) -> pd.DataFrame:
    lk = Lake(server.lake.storage)
    return lk.sql(
        "SELECT time, value, units FROM observations WHERE dataset_id = ? AND station_id = ? "
        "AND variable = ? AND time >= ? AND time <= ? ORDER BY time",
        [DATASET, STATION, variable, datetime(2022, 6, 1), datetime(2022, 6, 3)],
    ).to_pandas()


def client_for(server: RunningServer) -> ERDDAP:
    e = ERDDAP(server=f"{server.url}/erddap", protocol="tabledap")
    e.dataset_id = DATASET
    e.variables = ["station", "time", "sea_water_temperature", "sea_water_practical_salinity"]
    e.constraints = {"time>=": WINDOW[0], "time<=": WINDOW[1], "station=": STATION}
    return e


def test_erddapy_to_pandas_returns_the_lakes_rows_with_units(server: RunningServer) -> None:
    df = client_for(server).to_pandas()
    expected = lake_rows(server, "sea_water_temperature")
    assert len(expected) > 20
    assert "sea_water_temperature (degC)" in df.columns
    assert "time (UTC)" in df.columns
    assert list(pd.to_datetime(df["time (UTC)"]).dt.tz_localize(None)) == list(expected["time"])
    np.testing.assert_allclose(df["sea_water_temperature (degC)"], expected["value"])
    assert set(df["station"]) == {STATION}


def test_erddapy_to_xarray_is_cf_dsg_with_units(server: RunningServer) -> None:
    ds = client_for(server).to_xarray()
    expected = lake_rows(server, "sea_water_practical_salinity")
    assert ds.attrs["featureType"] == "TimeSeries"
    assert ds["sea_water_temperature"].attrs["units"] == "degC"
    assert ds["sea_water_practical_salinity"].attrs["units"] == expected["units"].iloc[0]
    assert ds["station"].attrs["cf_role"] == "timeseries_id"
    assert int(ds["rowSize"].sum()) == ds.sizes["obs"]
    np.testing.assert_allclose(ds["sea_water_practical_salinity"].values, expected["value"])
    times = pd.to_datetime(ds["time"].values)
    assert times.min() == expected["time"].min() and times.max() == expected["time"].max()


def test_erddapy_search_and_info(server: RunningServer) -> None:
    e = ERDDAP(server=f"{server.url}/erddap", protocol="tabledap")
    found = pd.read_csv(e.get_search_url(search_for="salinity", response="csv"))
    assert list(found["Dataset ID"]) == [DATASET]
    assert e.get_var_by_attr(DATASET, standard_name="sea_water_temperature") == [
        "sea_water_temperature"
    ]
    assert e.get_var_by_attr(DATASET, axis="T") == ["time"]


def test_drafts_are_not_searchable(client: httpx.Client) -> None:
    r = client.get("/erddap/search/index.csv", params={"searchFor": "draft"})
    assert r.status_code == 404


def test_csv_has_units_row_and_json_table(client: httpx.Client) -> None:
    q = f"station,time,sea_water_temperature&time>={WINDOW[0]}&time<={WINDOW[1]}"
    r = client.get(f"/erddap/tabledap/{DATASET}.csv?{q}")
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "station,time,sea_water_temperature"
    assert lines[1] == ",UTC,degC"
    doc = client.get(f"/erddap/tabledap/{DATASET}.json?{q}").json()["table"]
    assert doc["columnNames"] == ["station", "time", "sea_water_temperature"]
    assert doc["columnUnits"] == [None, "UTC", "degC"]
    assert len(doc["rows"]) == len(lines) - 2


def test_geojson_and_html_table(client: httpx.Client) -> None:
    q = "longitude,latitude,time,sea_water_temperature&time>=2022-06-05T00:00:00Z"
    gj = client.get(f"/erddap/tabledap/{DATASET}.geoJson?{q}").json()
    assert gj["type"] == "FeatureCollection" and gj["features"]
    assert gj["features"][0]["geometry"]["coordinates"] == [-70.566, 42.523]
    page = client.get(f"/erddap/tabledap/{DATASET}.htmlTable?{q}")
    assert page.headers["content-type"].startswith("text/html")
    assert "<th>sea_water_temperature</th>" in page.text and "<th>degC</th>" in page.text


def test_operators_regex_distinct_and_order_by_max(client: httpx.Client) -> None:
    base = "/erddap/tabledap/rt-buoys.csvp"
    r = client.get(f'{base}?station,sea_water_temperature&station=~".*(fresh|stale)"&distinct()')
    df = pd.read_csv(io.StringIO(r.text))
    assert set(df["station"]) == {"urn:ioos:station:test:fresh", "urn:ioos:station:test:stale"}
    assert df.duplicated().sum() == 0
    r = client.get(
        f'{base}?station,time,sea_water_temperature&station!="urn:ioos:station:test:stale"'
        '&orderByMax("station,time")'
    )
    latest = pd.read_csv(io.StringIO(r.text))
    assert list(latest["station"]) == [
        "urn:ioos:station:test:fresh",
        "urn:ioos:station:test:offline",
    ]
    r = client.get(
        f"{base}?station,time,sea_water_temperature&sea_water_temperature>15"
        "&sea_water_temperature<=16"
    )
    values = pd.read_csv(io.StringIO(r.text))["sea_water_temperature (degree_Celsius)"]
    assert len(values) > 0 and values.between(15, 16).all() and (values > 15).all()


def test_failed_values_are_masked_unless_asked_and_flags_are_columns(client: httpx.Client) -> None:
    q = (
        "station,time,sea_water_temperature,sea_water_temperature_qc_agg"
        '&station="urn:ioos:station:test:fresh"&sea_water_temperature_qc_agg=4'
    )
    masked = json.loads(client.get(f"/erddap/tabledap/rt-buoys.json?{q}").text)["table"]["rows"]
    assert len(masked) == 1 and masked[0][2] is None and masked[0][3] == 4
    full = client.get(f"/erddap/tabledap/rt-buoys.json?{q}&include_flagged=true").json()
    assert full["table"]["rows"][0][2] == 99.0


def test_nc_is_cf_dsg(client: httpx.Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/erddap/tabledap/rt-buoys.nc?station,time,sea_water_temperature")
    assert r.headers["content-type"] == "application/x-netcdf"
    path = tmp_path / "rt.nc"
    path.write_bytes(r.content)
    with xr.open_dataset(path) as ds:
        assert ds.sizes["timeseries"] == 3 and ds.sizes["obs"] == 72
        assert ds["sea_water_temperature"].attrs["units"] == "degree_Celsius"


def test_empty_result_is_erddap_404(client: httpx.Client) -> None:
    r = client.get(f"/erddap/tabledap/{DATASET}.csv?time&time>=2030-01-01")
    assert r.status_code == 404
    assert "Your query produced no matching results" in r.text


def test_order_by_min_limit_descending_and_relative_time(client: httpx.Client) -> None:
    base = "/erddap/tabledap/rt-buoys.json?station,time,sea_water_temperature"
    rows = client.get(f'{base}&orderByMin("station,time")').json()["table"]["rows"]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and len(rows) == 3
    rows = client.get(f'{base}&orderByLimit("station,2")').json()["table"]["rows"]
    assert len(rows) == 6
    rows = client.get(f'{base}&orderByDescending("time")').json()["table"]["rows"]
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    rows = client.get(f"{base}&time>=now-1hour").json()["table"]["rows"]
    assert {r[0] for r in rows} == {"urn:ioos:station:test:fresh"}
