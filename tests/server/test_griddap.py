"""ERDDAP griddap over the lake's grids and the rest of what ERDDAP clients ask: erddapy's
griddap_initialize() and to_xarray() unchanged, equal to the Icechunk store; constraints in
ERDDAP's value and index forms; search for all, allDatasets, tabledap .das/.dds and
max(time)-1day."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from erddapy import ERDDAP

from lake.grids import GridStore
from tests.server.conftest import RunningServer

GRID = "ersst"


def store(server: RunningServer) -> xr.Dataset:
    return GridStore(server.lake.storage, GRID).open()


def test_erddapy_griddap_to_xarray_equals_the_store(server: RunningServer) -> None:
    e = ERDDAP(server=f"{server.url}/erddap", protocol="griddap")
    e.dataset_id = GRID
    e.griddap_initialize()
    assert set(e.variables) == {"sst", "ssta"}
    ds = e.to_xarray()
    want = store(server)
    for name in ("sst", "ssta"):
        np.testing.assert_array_equal(ds[name].values, want[name].values)
    np.testing.assert_array_equal(ds.time.values, want.time.values)
    np.testing.assert_array_equal(ds.lat.values, want.lat.values)
    # narrowed as a user narrows it: a box and a stride
    # (this grid went into the lake as the file has it: longitudes 0..358, a `lev` axis)
    e.constraints.update({"lat>=": 30.0, "lat<=": 50.0, "lon>=": 280.0, "lon<=": 300.0})
    e.constraints.update({"lon_step": 2})
    e.variables = ["sst"]
    box = e.to_xarray()
    lat = (want.lat >= 30) & (want.lat <= 50)
    lon_idx = np.flatnonzero(((want.lon >= 280) & (want.lon <= 300)).values)[::2]
    expected = want.sst.isel(lat=np.flatnonzero(lat.values), lon=lon_idx)
    np.testing.assert_array_equal(box.sst.values, expected.values)


@pytest.mark.parametrize(
    ("query", "sel"),
    [
        ("sst[(2016-06-01T00:00:00Z):1:(last)][0][(40):(44)][(290):(294)]", None),
        ("sst[0][0][10:2:20][last-3:last]", {"lat": slice(10, 21, 2), "lon": slice(-4, None)}),
        ("sst[last][(0.0)][(-88)][0]", {"lat": slice(0, 1), "lon": slice(0, 1)}),
    ],
)
def test_constraint_forms_in_csv_and_json(
    client: httpx.Client, server: RunningServer, query: str, sel: dict[str, slice] | None
) -> None:
    want = store(server)
    if sel is None:
        expected = want.sst.sel(lat=slice(40, 44), lon=slice(290, 294))
    else:
        expected = want.sst.isel(time=slice(0, 1), lev=slice(0, 1), **sel)
    r = client.get(f"/erddap/griddap/{GRID}.csv?{query}")
    assert r.status_code == 200, r.text
    frame = pd.read_csv(io.StringIO(r.text), skiprows=[1])
    assert list(frame.columns) == ["time", "lev", "lat", "lon", "sst"]
    np.testing.assert_array_equal(frame["sst"].to_numpy(), expected.values.ravel())
    assert r.text.splitlines()[1].startswith("UTC,")
    j = client.get(f"/erddap/griddap/{GRID}.json?{query}").json()["table"]
    got = np.array([np.nan if row[4] is None else row[4] for row in j["rows"]], dtype="f4")
    np.testing.assert_array_equal(got, expected.values.ravel())
    assert j["rows"][0][0] == "2016-06-01T00:00:00Z"


def test_das_dds_and_errors(client: httpx.Client) -> None:
    dds = client.get(f"/erddap/griddap/{GRID}.dds?sst[0][0][0:1:9][0:1:4]").text
    assert "Float32 sst[time = 1][lev = 1][lat = 10][lon = 5];" in dds
    das = client.get(f"/erddap/griddap/{GRID}.das").text
    assert 'String units "seconds since 1970-01-01T00:00:00Z";' in das
    for bad in (
        "sst[0][0]",
        "sst[(1990-01-01)][0][0]",
        "sst[0][5:1][0]",
        "nope[0]",
        "sst[0][x][0]",
    ):
        r = client.get(f"/erddap/griddap/{GRID}.csv?{bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)
    assert client.get("/erddap/griddap/nope.csv").status_code == 404
    assert client.get(f"/erddap/griddap/{GRID}.xyz").status_code == 400


def test_search_for_all_finds_grids_and_tables(server: RunningServer, client: httpx.Client) -> None:
    e = ERDDAP(server=f"{server.url}/erddap", protocol="griddap")
    grids = pd.read_csv(e.get_search_url(search_for="all", response="csv"))
    assert list(grids["Dataset ID"]) == [GRID]
    assert grids["griddap"][0] == f"{server.url}/erddap/griddap/{GRID}"
    every = client.get("/erddap/search/index.csv", params={"searchFor": "all"})
    assert every.status_code == 200
    ids = set(pd.read_csv(io.StringIO(every.text))["Dataset ID"])
    assert {GRID, "ndbc-44029-ocean"} <= ids
    assert ".subset" not in every.text  # no link to a page that does not exist


def test_all_datasets(client: httpx.Client) -> None:
    r = client.get("/erddap/tabledap/allDatasets.csv")
    assert r.status_code == 200, r.text
    frame = pd.read_csv(io.StringIO(r.text))
    rows = frame.set_index("datasetID")
    assert rows.loc[GRID, "dataStructure"] == "grid"
    assert rows.loc["ndbc-44029-ocean", "dataStructure"] == "table"
    assert rows.loc["ndbc-44029-ocean", "minLatitude"] == pytest.approx(42.523, abs=0.01)
    assert client.get("/erddap/tabledap/allDatasets.json").json()["table"]["columnNames"][0] == (
        "datasetID"
    )


def test_tabledap_das_dds_and_max_time(client: httpx.Client) -> None:
    dds = client.get("/erddap/tabledap/ndbc-44029-ocean.dds").text
    assert "Sequence {" in dds and "Float64 time;" in dds and "String station;" in dds
    das = client.get("/erddap/tabledap/ndbc-44029-ocean.das").text
    assert "sea_water_temperature {" in das and "NC_GLOBAL {" in das
    last = client.get(
        "/erddap/tabledap/ndbc-44029-ocean.csv?time,sea_water_temperature&time>=max(time)-1day"
    )
    assert last.status_code == 200, last.text
    times = pd.to_datetime(pd.read_csv(io.StringIO(last.text), skiprows=[1])["time"])
    assert (times.max() - times.min()) <= pd.Timedelta(days=1) and len(times) > 5
    everything = client.get("/erddap/tabledap/ndbc-44029-ocean.csv?time&time>=min(time)")
    assert everything.status_code == 200
