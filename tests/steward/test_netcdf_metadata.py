"""Every NetCDF the lake hands out, made from real recorded data, passes the IOOS
compliance-checker's high-priority checks (CF 1.8, ACDD 1.3, IOOS 1.2, NCEI templates), and
its coverage and ranges are those of the values in the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from coastlake.server.downloads import grid_netcdf
from coastlake.server.erddap.routes import tabledap_answer
from lake.deps import LakeDeps
from lake.grids import open_grid
from lake.netcdf import acdd_attrs, dataset_to_netcdf_bytes
from lake.reader import Lake
from lake.registry import Registry
from lake.station_files import station_dataset
from tests.steward.compliance import COMMON, NCEI_GRID, NCEI_TIMESERIES, high_failures

#: The IOOS checker's GTS ingest report "will always fail so as to notify the user which
#: variables qualified" (its own docstring): information, not a failure of the file.
ALWAYS_FAILS = "NDBC/GTS Ingest Requirements"
#: A grid cannot satisfy all three: CF allows featureType only for discrete sampling
#: geometries (and fails "grid"), NCEI's grid template and IOOS 1.2 require featureType=grid.
#: The lake follows CF; these are the only checks a grid may fail.
GRID_FEATURETYPE = ("featureType", "Required Global Attributes for Grid", "Required global attr")


def _failures(path: Path, checkers: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{checker}: {message}"
        for checker, messages in high_failures(path, checkers).items()
        for message in messages
        if not message.startswith((ALWAYS_FAILS, *allowed))
    ]


def _write(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def test_station_files_pass_cf_acdd_ioos_and_ncei(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    # A few variables each: every variable takes the same path through the writer, and
    # the checkers' time grows with the number of variables (a flag per test per variable).
    for dataset_id, station, variables in (
        (
            "ndbc-44013-stdmet",
            "urn:ioos:station:wmo:44013",
            ["tendency_of_air_pressure", "sea_surface_temperature", "wind_speed"],
        ),
        ("ndbc-44029-ocean", "urn:ioos:station:wmo:44029", None),
        (
            "nerrs-gndblwq",
            "urn:ioos:station:nerrs:gndblwq",
            ["depth", "sea_water_temperature", "sea_water_practical_salinity"],
        ),
    ):
        ds = station_dataset(
            lk, dataset_id, station, variables=variables, stream=registry.get(dataset_id)
        )
        path = _write(tmp_path, f"{dataset_id}.nc", dataset_to_netcdf_bytes(ds))
        assert _failures(path, (*COMMON, NCEI_TIMESERIES)) == [], dataset_id


def test_station_file_carries_every_flag_and_computed_ranges(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    ds = station_dataset(
        lk,
        "ndbc-44029-ocean",
        "urn:ioos:station:wmo:44029",
        stream=registry.get("ndbc-44029-ocean"),
    )
    path = _write(tmp_path, "a01.nc", dataset_to_netcdf_bytes(ds))
    with xr.open_dataset(path, mask_and_scale=False) as back:
        temp = back["sea_water_temperature"]
        ancillary = temp.attrs["ancillary_variables"].split()
        # The aggregate and each QARTOD test that ran (the regional stream runs the suite).
        assert {"sea_water_temperature_qc_agg", "sea_water_temperature_qc_gross_range"} <= set(
            ancillary
        )
        gross = back["sea_water_temperature_qc_gross_range"]
        assert gross.attrs["standard_name"] == "gross_range_test_quality_flag"
        assert list(gross.attrs["flag_values"]) == [1, 2, 3, 4, 9]
        values = temp.values[np.isfinite(temp.values)]
        assert list(temp.attrs["actual_range"]) == [values.min(), values.max()]
        stored = lk.sql(
            "select min(lat) lo, max(lat) hi, min(time) t0 from observations_all "
            "where dataset_id = 'ndbc-44029-ocean'"
        ).to_pylist()[0]
        assert back.attrs["geospatial_lat_min"] == stored["lo"]
        assert back.attrs["time_coverage_start"] == stored["t0"].isoformat() + "Z"
        assert back.attrs["publisher_email"] == "data@example.org"


def test_pressure_tendency_states_its_interval_and_provider_flags_are_coded(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    ds = station_dataset(
        lk,
        "ndbc-44013-stdmet",
        "urn:ioos:station:wmo:44013",
        stream=registry.get("ndbc-44013-stdmet"),
    )
    # NDBC's PTDY is the change over three hours: udunits reads the units as Pa s-1 / 10800.
    assert ds["tendency_of_air_pressure"].attrs["units"] == "Pa/(3 h)"
    nerrs = station_dataset(
        lk, "nerrs-gndblwq", "urn:ioos:station:nerrs:gndblwq", stream=registry.get("nerrs-gndblwq")
    )
    flag = nerrs["sea_water_temperature_provider_flag"]
    assert "flag_0" in flag.attrs["flag_meanings"].split()
    assert len(flag.attrs["flag_values"]) == len(flag.attrs["flag_meanings"].split())
    assert (
        "sea_water_temperature_provider_flag"
        in nerrs["sea_water_temperature"].attrs["ancillary_variables"].split()
    )


def test_tabledap_nccf_passes_cf_acdd_ioos(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, _ = sample_lake
    ctx = LakeDeps.create(lk.storage, lk.storage.settings)
    body, _, rows = tabledap_answer(ctx, "ndbc-44013-stdmet", "ncCF", "")
    assert rows > 1000
    assert _failures(_write(tmp_path, "t.nc", body), COMMON) == []


def test_grid_subset_passes_and_its_coverage_is_the_subsets(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    grid = open_grid(lk.storage, "erddap-mw-sst-1day")
    attrs = acdd_attrs(registry.get("erddap-mw-sst-1day"))
    body = grid_netcdf(grid, ["sst"], (-150.0, 30.0, -149.5, 30.5), None, None, attrs)
    path = _write(tmp_path, "g.nc", body)
    assert _failures(path, (*COMMON, NCEI_GRID), GRID_FEATURETYPE) == []
    with xr.open_dataset(path) as back:
        # The source said 210..211 (0-360) for its whole box; the subset runs -150..-149.5.
        assert back.attrs["geospatial_lon_min"] == float(back["longitude"].min())
        assert back.attrs["geospatial_lon_max"] == float(back["longitude"].max()) <= -149.5
        sst = back["sst"].values
        assert np.allclose(back["sst"].attrs["actual_range"], [np.nanmin(sst), np.nanmax(sst)])
