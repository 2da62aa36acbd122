"""OPeNDAP (DAP2) read by the clients users bring (netCDF4-python, pydap, xarray with either
engine) against a real server, compared value by value with the Icechunk store: single
indices, ranged and strided hyperslabs (inclusive stop), every grid including a model run."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import netCDF4
import numpy as np
import pytest
import xarray as xr
from pydap.client import open_url

from coastlake.server.app import maps_app
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import ERSST, HFR, MW_SST, ROMS, grid_stream, serve

ERSST_VARS = [
    {"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"},
    {"source": "ssta", "standard_name": "sea_surface_temperature_anomaly", "units": "degree_C"},
]
GRIDS = ["mw-sst", "ersst", "wcofs"]

warnings.filterwarnings("ignore", message="PyDAP was unable to determine the DAP protocol")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    root = tmp_path_factory.mktemp("dap") / "lake"
    storage = Storage.from_settings(Settings(root=str(root)))
    ingest_grid(storage, grid_stream("mw-sst", MW_SST))
    ingest_grid(storage, grid_stream("ersst", ERSST, variables=ERSST_VARS))
    ingest_grid(storage, grid_stream("wcofs", ROMS, category="model", regrid=True))
    return storage


@pytest.fixture(scope="module")
def served(lake: Storage) -> Iterator[str]:
    with serve(maps_app(lake)) as base:
        yield f"{base}/grids/datasets"


def store(lake: Storage, dataset_id: str) -> xr.Dataset:
    return GridStore(lake, dataset_id).open()


def picks(shape: tuple[int, ...]) -> list[tuple[slice | int, ...]]:
    """A single value, a ranged block and strided reads that end exactly on the stop."""
    t, y, x = shape
    return [
        (t - 1, y // 2, x // 3),
        (slice(0, t), slice(1, min(y, 6)), slice(x - 4, x)),
        (slice(0, t, max(1, t - 1)), slice(0, y, 3), x - 1),
        (0, slice(2, min(y, 11), 2), slice(0, x, 7)),
    ]


@pytest.mark.parametrize("dataset_id", GRIDS)
def test_netcdf4_reads_the_stored_values(lake: Storage, served: str, dataset_id: str) -> None:
    want = store(lake, dataset_id)
    nc = netCDF4.Dataset(f"{served}/{dataset_id}/opendap")
    grids = [str(v) for v in want.data_vars if want[v].ndim == 3]
    assert grids
    for name in grids:
        values = want[name].values
        for index in picks(values.shape):
            got = np.ma.filled(nc[name][index].astype("f8"), np.nan)
            np.testing.assert_array_equal(got, values[index], err_msg=f"{name}{index}")
    # coordinates too, times decoded through the CF units we declare
    for coord in map(str, want.dims):
        got_c = nc[coord][:]
        if want[coord].dtype.kind == "M":
            got_c = netCDF4.num2date(got_c, nc[coord].units, only_use_cftime_datetimes=False)
            got_c = np.array(got_c, dtype="datetime64[ns]")
        np.testing.assert_array_equal(got_c, want[coord].values)
    nc.close()


@pytest.mark.parametrize("dataset_id", GRIDS)
def test_pydap_and_xarray_engines_read_the_stored_values(
    lake: Storage, served: str, dataset_id: str
) -> None:
    want = store(lake, dataset_id)
    for engine in ("pydap", "netcdf4"):
        got = xr.open_dataset(f"{served}/{dataset_id}/opendap", engine=engine)
        assert set(want.data_vars) <= set(got.data_vars), engine
        for name in want.data_vars:
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=engine)
            for index in picks(want[name].shape) if want[name].ndim == 3 else []:
                sel = dict(zip(want[name].dims, index, strict=True))
                np.testing.assert_array_equal(
                    got[name].isel(sel).values, want[name].isel(sel).values, err_msg=engine
                )
        for coord in want.dims:
            np.testing.assert_array_equal(got[coord].values, want[coord].values, err_msg=engine)


def test_model_run_times_are_numbers_with_cf_units(lake: Storage, served: str) -> None:
    dds = httpx.get(f"{served}/wcofs/opendap.dds").text
    assert "String" not in dds
    assert "Float64 forecast_reference_time[time = 4];" in dds
    das = httpx.get(f"{served}/wcofs/opendap.das").text
    assert 'String units "seconds since 1970-01-01T00:00:00Z";' in das
    got = xr.open_dataset(f"{served}/wcofs/opendap", engine="netcdf4")
    want = store(lake, "wcofs")
    np.testing.assert_array_equal(
        got.forecast_reference_time.values, want.forecast_reference_time.values
    )


def test_hyperslab_stop_is_inclusive_and_stride_counts(lake: Storage, served: str) -> None:
    want = store(lake, "mw-sst")
    times = want.time.values
    remote = open_url(f"{served}/mw-sst/opendap", output_grid=False)
    for expr, expected in [
        ("time[0:1:4]", times[0:5]),
        ("time[2:1:3]", times[2:4]),
        ("time[0:1:0]", times[0:1]),
        ("time[1:3:10]", times[1:11:3]),
        ("time[7]", times[7:8]),
    ]:
        dds = httpx.get(f"{served}/mw-sst/opendap.dds?{expr}").text
        assert f"[time = {len(expected)}]" in dds, (expr, dds)
    seconds = (times - np.datetime64(0, "s")) / np.timedelta64(1, "s")
    np.testing.assert_array_equal(remote["time"][0:5], seconds[0:5])
    np.testing.assert_array_equal(remote["time"][1:11:3], seconds[1:11:3])
    sst = want.sst.values
    np.testing.assert_array_equal(remote["sst"][1:8:3, 10:40:5, 20:21], sst[1:8:3, 10:40:5, 20:21])


@pytest.mark.parametrize(
    "expr",
    ["time[0:1:999]", "time[5:1:2]", "time[0:0:3]", "time[a]", "nope", "sst[0][0][0][0]", "x&y>1"],
)
def test_bad_constraints_are_client_errors(served: str, expr: str) -> None:
    for suffix in ("dds", "dods"):
        r = httpx.get(f"{served}/mw-sst/opendap.{suffix}?{expr}")
        assert 400 <= r.status_code < 500, (expr, r.status_code, r.text)
    assert httpx.get(f"{served}/nope/opendap.dds").status_code == 404


@pytest.mark.slow
def test_hf_radar_strided_read_matches_the_store(tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    ingest_grid(storage, grid_stream("hfr", HFR))
    want = store(storage, "hfr").speed.values
    with serve(maps_app(storage)) as base:
        nc = netCDF4.Dataset(f"{base}/grids/datasets/hfr/opendap")
        got = np.ma.filled(nc["speed"][0, 385:395:2, 1141].astype("f8"), np.nan)
        np.testing.assert_array_equal(got, want[0, 385:395:2, 1141])
        assert np.isfinite(got).sum() >= 3 and np.isnan(got).any()
        remote = xr.open_dataset(f"{base}/grids/datasets/hfr/opendap", engine="pydap")
        np.testing.assert_array_equal(
            remote.speed.isel(time=0, lat=slice(385, 395, 2), lon=1141).values,
            want[0, 385:395:2, 1141],
        )
