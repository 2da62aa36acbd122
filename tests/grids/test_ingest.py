"""Grid ingest from the real files: values equal the source, CF kept, lon −180…180, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ingest.grids import griddap_url, ingest_grid
from lake.errors import ConfigError, ParseError
from lake.grids import GridStore, chunk_plan, list_grids
from lake.storage import Storage
from tests.grids.support import ERSST, FVCOM, HFR, MW_SST, ROMS, grid_stream


@pytest.fixture
def local(local_settings) -> Storage:  # type: ignore[no-untyped-def]
    return Storage.from_settings(local_settings)


def test_satellite_sst_values_equal_source_at_points(storage: Storage) -> None:
    result = ingest_grid(storage, grid_stream("mw-sst", MW_SST))
    assert result.times_added == 60
    lake = GridStore(storage, "mw-sst").open()
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    # longitudes came as 210..211 °E; the lake has them as −150..−149
    assert float(lake.longitude.min()) == pytest.approx(-150.0)
    assert float(lake.longitude.max()) == pytest.approx(-149.0)
    assert lake.time.dtype.kind == "M"
    for t, lat, lon in [(0, 30.2, 210.3), (42, 30.9875, 210.5), (49, 30.5, 210.9875)]:
        want = src.sst.isel(time=t).sel(latitude=lat, longitude=lon, method="nearest")
        got = lake.sst.isel(time=t).sel(latitude=lat, longitude=lon - 360, method="nearest")
        assert float(got.latitude) == pytest.approx(float(want.latitude))
        np.testing.assert_equal(float(got), float(want))
    assert lake.sst.attrs["standard_name"] == "sea_surface_temperature"
    assert lake.sst.attrs["units"] == "degree_C"
    assert lake.attrs["title"].startswith("SST, Aqua MODIS")
    # the whole array, not only the chosen points
    np.testing.assert_array_equal(lake.sst.values, src.sst.values)


def test_global_grid_longitudes_wrapped_and_sorted(local: Storage) -> None:
    ingest_grid(
        local,
        grid_stream(
            "ersst",
            ERSST,
            variables=[
                {"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"}
            ],
        ),
    )
    lake = GridStore(local, "ersst").open()
    lons = lake.lon.values
    assert lons.min() == -180.0 and lons.max() == 178.0
    assert np.all(np.diff(lons) > 0)
    src = xr.open_dataset(ERSST).squeeze("lev")
    want = float(src.sst.isel(time=0).sel(lat=-20.0, lon=200.0))  # 200 °E is −160
    assert float(lake.sst.isel(time=0).sel(lat=-20.0, lon=-160.0)) == pytest.approx(want)
    # the registry's curated name wins over the file's "SST"
    assert lake.sst.attrs["standard_name"] == "sea_surface_temperature"
    assert "lev" not in lake.dims


@pytest.mark.slow
def test_hf_radar_speed_and_direction(local: Storage) -> None:
    ingest_grid(local, grid_stream("hfr", HFR))
    lake = GridStore(local, "hfr").open()
    src = xr.open_dataset(HFR)
    u = src.u.isel(time=0).values
    v = src.v.isel(time=0).values
    j, i = np.argwhere(np.isfinite(u))[len(np.argwhere(np.isfinite(u))) // 2]
    speed = float(lake.speed.isel(time=0, lat=j, lon=i))
    direction = float(lake.direction.isel(time=0, lat=j, lon=i))
    assert speed == pytest.approx(float(np.hypot(u[j, i], v[j, i])), rel=1e-5)
    want_dir = (np.degrees(np.arctan2(u[j, i], v[j, i])) + 360) % 360
    assert direction == pytest.approx(want_dir, abs=1e-3)
    assert lake.speed.attrs["standard_name"] == "sea_water_speed"
    assert lake.direction.attrs["units"] == "degree"
    np.testing.assert_array_equal(lake.u.isel(time=0).values, u)
    # chunks: 256×256 in space so one web tile reads a few objects
    assert lake.u.encoding["chunks"][1:] == (256, 256)


def test_curvilinear_roms_refused_naming_dataset_and_what_is_missing(local: Storage) -> None:
    with pytest.raises(ParseError) as err:
        ingest_grid(local, grid_stream("wcofs", ROMS, category="model"))
    text = str(err.value)
    assert "wcofs" in text and "curvilinear" in text and "lat_rho" in text
    assert "roms_wcofs_subset_20241017.nc" in text
    assert not GridStore(local, "wcofs").exists()


def test_unstructured_fvcom_refused(local: Storage) -> None:
    with pytest.raises(ParseError, match=r"sfbofs.*unstructured mesh \(dims node, nele\)"):
        ingest_grid(local, grid_stream("sfbofs", FVCOM, category="model"))
    assert not GridStore(local, "sfbofs").exists()


def test_not_netcdf_is_a_syntax_failure_and_changes_nothing(local: Storage, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ingest_grid(local, grid_stream("mw-sst", MW_SST))
    before = GridStore(local, "mw-sst").snapshot_id()
    bad = tmp_path / "broken.nc"
    bad.write_text("<html>Proxy error</html>")
    with pytest.raises(ParseError, match=r"stream mw-sst, url .*broken.nc: not a NetCDF file"):
        ingest_grid(local, grid_stream("mw-sst", bad))
    assert GridStore(local, "mw-sst").snapshot_id() == before


def test_append_is_one_commit_each_and_reingest_changes_nothing(local: Storage, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = xr.open_dataset(MW_SST)
    first, second = tmp_path / "a.nc", tmp_path / "b.nc"
    src.isel(time=slice(0, 25)).to_netcdf(first)
    src.isel(time=slice(20, 60)).to_netcdf(second)  # overlaps 5 steps
    store = GridStore(local, "mw-sst")
    assert ingest_grid(local, grid_stream("mw-sst", first)).times_added == 25
    commits = len(store.history())
    assert ingest_grid(local, grid_stream("mw-sst", second)).times_added == 35
    assert len(store.history()) == commits + 1
    assert ingest_grid(local, grid_stream("mw-sst", second)).times_added == 0
    assert len(store.history()) == commits + 1
    lake = store.open()
    assert lake.sizes["time"] == 60
    np.testing.assert_array_equal(lake.sst.values, src.squeeze("altitude").sst.values)
    # time chunks are not cut at the first file's length: appends grow into them
    assert lake.sst.encoding["chunks"][0] == chunk_plan(lake)["time"]


def test_griddap_source_over_http(local: Storage, http_server) -> None:  # type: ignore[no-untyped-def]
    stream = grid_stream(
        "mw-griddap",
        http_server.url + "/erddap",
        kind="griddap",
        dataset="erdMWsstd1day",
        variables=[
            {"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"}
        ],
        time=["2016-10-17T12:00:00Z", "2016-12-17T12:00:00Z"],
        altitude=0.0,
        bbox=[210.0, 30, 211.0, 31],
    )
    url = griddap_url(stream)
    assert url.endswith(
        "/erddap/griddap/erdMWsstd1day.nc?sst[(2016-10-17T12:00:00Z):1:(2016-12-17T12:00:00Z)]"
        "[(0.0):1:(0.0)][(30):1:(31)][(210.0):1:(211.0)]"
    )
    http_server.routes[url.removeprefix(http_server.url)] = MW_SST
    result = ingest_grid(local, stream)
    assert result.times_added == 60
    assert any("erdMWsstd1day.nc?sst" in hit[0] for hit in http_server.hits)
    info = {g.dataset_id: g for g in list_grids(local)}["mw-griddap"]
    assert info.variables[0].standard_name == "sea_surface_temperature"
    assert info.bbox == pytest.approx((-150.0, 30.0, -149.0, 31.0))


def test_griddap_needs_dataset() -> None:
    with pytest.raises(ConfigError, match=r"stream 'x'.*needs 'dataset'"):
        griddap_url(grid_stream("x", "http://example.org/erddap", kind="griddap"))
