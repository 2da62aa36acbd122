"""The one NetCDF writer of observation rows: both timeSeries layouts, read back from bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lake.flags import FAIL, FLAG_MEANINGS, FLAG_NAMES, FLAG_VALUES, PASS
from lake.netcdf import NcVariable, dataset_to_netcdf_bytes, observations_to_netcdf
from lake.stations import station_urn

VARIABLES = [
    NcVariable("station", "string", "station", {"long_name": "station"}),
    NcVariable("lon", role="instance", attrs={"units": "degrees_east"}),
    NcVariable("time", "time", "coordinate", {"standard_name": "time"}),
    NcVariable("temp", attrs={"units": "degC"}),
    NcVariable("temp_qc_agg", "flag"),
]


def rows() -> pd.DataFrame:
    """Two stations, out of order; station b moved between its two reports."""
    return pd.DataFrame(
        {
            "station": ["b", "a", "b", "a", "a"],
            "lon": [-70.0, -71.0, -70.5, np.nan, -71.0],
            "time": pd.to_datetime(
                [
                    "2022-06-01T01",
                    "2022-06-01T00",
                    "2022-06-01T00",
                    "2022-06-01T01",
                    "2022-06-01T02",
                ]
            ),
            "temp": [11.0, 20.0, 10.0, np.nan, 22.0],
            "temp_qc_agg": [PASS, PASS, FAIL, np.nan, PASS],
        }
    )


def read(body: bytes, tmp_path: Path) -> xr.Dataset:
    path = tmp_path / "out.nc"
    path.write_bytes(body)
    return xr.load_dataset(path)


def test_ragged_layout_is_contiguous_per_station(tmp_path: Path) -> None:
    ds = read(observations_to_netcdf(rows(), VARIABLES, {"title": "t", "summary": ""}), tmp_path)
    assert ds.attrs["featureType"] == "timeSeries" and ds.attrs["title"] == "t"
    assert "summary" not in ds.attrs  # empty attributes are left out
    assert ds.attrs["time_coverage_start"] == "2022-06-01T00:00:00Z"
    assert list(ds["station"].values) == ["a", "b"]
    assert ds["station"].attrs["cf_role"] == "timeseries_id"
    assert list(ds["rowSize"].values) == [3, 2]
    assert ds["rowSize"].attrs["sample_dimension"] == "obs"
    assert list(ds["lon"].values) == [-71.0, -70.0]  # the last position each station reported
    np.testing.assert_array_equal(ds["temp"].values, [20.0, np.nan, 22.0, 10.0, 11.0])
    assert ds["temp"].encoding["coordinates"] == "time lon station"
    flag = ds["temp_qc_agg"]
    np.testing.assert_array_equal(flag.values, [PASS, np.nan, PASS, FAIL, PASS])
    assert flag.encoding["dtype"] == np.int8
    assert list(flag.attrs["flag_values"]) == list(FLAG_VALUES)
    assert flag.attrs["flag_meanings"] == FLAG_MEANINGS


def test_single_layout_has_one_station_and_a_time_axis(tmp_path: Path) -> None:
    one = rows().query("station == 'a'")
    ds = read(observations_to_netcdf(one, VARIABLES, layout="single"), tmp_path)
    assert ds["time"].dims == ("time",) and ds.sizes["time"] == 3
    # IOOS 1.2 wants the timeseries_id of a one-platform file on a dimension of length 1.
    assert ds["station"].dims == ("timeseries",) and list(ds["station"].values) == ["a"]
    assert ds.attrs["ncei_template_version"].startswith("NCEI_NetCDF_TimeSeries_Orthogonal")
    assert float(ds["lon"]) == -71.0
    assert list(ds.data_vars) == ["temp", "temp_qc_agg"]
    assert "_FillValue" not in ds["time"].encoding  # a coordinate variable has no gaps


def test_single_layout_refuses_several_stations() -> None:
    with pytest.raises(ValueError, match="one station"):
        observations_to_netcdf(rows(), VARIABLES, layout="single")


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="'temp'"):
        observations_to_netcdf(rows().drop(columns="temp"), VARIABLES)


def test_grid_datasets_share_the_byte_writer(tmp_path: Path) -> None:
    grid = xr.Dataset({"sst": (("lat", "lon"), np.ones((2, 3)))}, {"lat": [0, 1], "lon": [0, 1, 2]})
    body = dataset_to_netcdf_bytes(grid)
    assert body[:4] == b"\x89HDF"
    assert read(body, tmp_path)["sst"].shape == (2, 3)


def test_flag_vocabulary_and_station_urns() -> None:
    assert (
        FLAG_NAMES[FAIL] == "fail"
        and FLAG_MEANINGS.split()[list(FLAG_VALUES).index(FAIL)] == "fail"
    )
    assert not FLAG_VALUES.flags.writeable
    assert station_urn("wmo", "44013") == "urn:ioos:station:wmo:44013"
    with pytest.raises(ValueError, match="authority and a code"):
        station_urn("wmo", "")
