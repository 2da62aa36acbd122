"""Provider contributions: a file lands like a harvest of its stream (raw zone, syntax test,
QC, one merge, the provider named in the harvest log); a bad file is refused naming the file
and the fault, and the lake's values are unchanged.

Files: NDBC's latest observations (the `ndbc-latest-obs` CSV stream's own layout) and
ERDDAP's CF time-series NetCDF of TAO 10N 95W (`erddap-tao-10n95w-iso`), both recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coastlake.contribute import contribute
from lake.errors import RequestError
from lake.harvest_log import HarvestLog
from lake.raw import RawZone
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY
from lake.storage import Storage
from tests.conftest import REPO
from tests.ingest.support import INGEST_DATA, NDBC, one, rows

LATEST = NDBC / "data/latest_obs/latest_obs.txt"
TAO_NC = INGEST_DATA / "pmelTao5dayIso_ISO_6_10N265E.ncCF.nc"
VCAF1_NC = INGEST_DATA / "vcaf1h2005.nc"
LAKE = str(Path(sys.executable).parent / "lake")


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    return load_registry(SAMPLE_REGISTRY)


def test_csv_upload_lands_like_a_harvest(local_settings, registry, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    sent = tmp_path / "obs-2024-06-01.txt"
    sent.write_bytes(LATEST.read_bytes())
    done = contribute(storage, registry, "ndbc-latest-obs", sent, "NDBC data desk")
    assert done.ok, done.record.error
    record = done.record
    assert record.label == "upload by NDBC data desk: obs-2024-06-01.txt"
    assert record.rows_added > 100
    assert RawZone(storage).get("ndbc-latest-obs", str(record.raw_id)) == LATEST.read_bytes()
    # latest_obs.txt: "44013  42.346 -70.651 2022 06 05 13 50 ..." as the csv stream reads it
    found = rows(storage, "dataset_id = 'ndbc-latest-obs'")
    assert len(found) == record.rows_added
    assert {r["raw_id"] for r in found} == {record.raw_id}
    # QC ran as in a harvest: every value has its aggregate flag
    from lake.reader import Lake

    flags = (
        Lake(storage)
        .sql(
            "select count(*) as n, count(qc_agg) as flagged, min(source) as source, "
            "min(source_rank) as rank from observations_all"
        )
        .to_pylist()[0]
    )
    assert flags == {"n": len(found), "flagged": len(found), "source": "upload", "rank": 1}
    assert HarvestLog(storage).latest("ndbc-latest-obs")[0].label.startswith("upload by NDBC")


def test_netcdf_upload_reads_cf_time_series(local_settings, registry, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    done = contribute(storage, registry, "erddap-tao-10n95w-iso", TAO_NC, "GTMBA")
    assert done.ok, done.record.error
    assert done.record.rows_added == 276  # 286 observations in the file, 10 of them NaN
    # first value of ISO_6 in the file: 14.802495 m at 1999-12-02 12:00 UTC
    first = one(storage, "time = timestamp '1999-12-02 12:00:00'")
    assert first["value"] == pytest.approx(14.802495, 1e-6)
    assert first["station_id"] == "urn:ioos:station:gtmba:10n95w"
    assert first["variable"] == "depth_of_isosurface_of_sea_water_potential_temperature"
    assert (first["lon"], first["lat"]) == (-95.0, 10.0)  # 265 E in the file


def test_bad_upload_is_refused_and_the_lake_unchanged(
    local_settings, registry, tmp_path: Path
) -> None:
    storage = Storage.from_settings(local_settings)
    good = tmp_path / "latest.txt"
    good.write_bytes(LATEST.read_bytes())
    assert contribute(storage, registry, "ndbc-latest-obs", good, "NDBC").ok
    before = rows(storage)
    cut = tmp_path / "latest-cut.txt"
    cut.write_bytes(LATEST.read_bytes()[:5000])  # a transfer cut mid-row
    refused = contribute(storage, registry, "ndbc-latest-obs", cut, "NDBC")
    assert not refused.ok and refused.record.status == "syntax_failed"
    assert "latest-cut.txt" in (refused.record.error or "") and "truncated" in (
        refused.record.error or ""
    )
    netcdf = tmp_path / "broken.nc"
    netcdf.write_bytes(TAO_NC.read_bytes()[:3000])
    broken = contribute(storage, registry, "erddap-tao-10n95w-iso", netcdf, "GTMBA")
    assert not broken.ok and "broken.nc" in (broken.record.error or "")
    assert "not a readable NetCDF file" in (broken.record.error or "")
    assert rows(storage) == before
    with pytest.raises(RequestError, match="contributions go to streams of observations"):
        contribute(storage, registry, "erddap-mw-sst-1day", good, "NDBC")


def test_lake_contribute_command(tmp_path: Path) -> None:
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake"), "LAKE_REGISTRY": str(SAMPLE_REGISTRY)}

    def lake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LAKE, "contribute", *args], capture_output=True, text=True, env=env, cwd=REPO,
            timeout=300,
        )  # fmt: skip

    ok = lake("erddap-tao-10n95w-iso", str(TAO_NC), "--provider", "GTMBA")
    assert ok.returncode == 0, ok.stderr
    assert "276 values read, 276 new (upload by GTMBA" in " ".join(ok.stderr.split())
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    refused = lake("ndbc-latest-obs", str(bad))
    assert refused.returncode == 1
    assert "empty.csv refused (syntax_failed)" in " ".join(refused.stderr.split())


def test_netcdf_read_by_its_own_cf_names(local_settings, tmp_path: Path) -> None:
    """NDBC's own NetCDF for C-MAN VCAF1 (2005, recorded), sent for a stream of that
    station: variables with CF names the lake knows are read by those names and units."""
    from lake.registry import Registry
    from tests.ingest.support import make_stream

    storage = Storage.from_settings(local_settings)
    stream = make_stream("ndbc-vcaf1", {"kind": "ndbc", "stations": ["VCAF1"]})
    registry = Registry(streams=[stream])
    done = contribute(storage, registry, "ndbc-vcaf1", VCAF1_NC, "NDBC")
    assert done.ok, done.record.error
    # first record: 2005-02-01 21:00, wind_spd 5.5 m/s from 325 degrees_true, air 21.1 C
    at = "time = timestamp '2005-02-01 21:00:00'"
    assert one(storage, f"{at} and variable = 'wind_speed'")["value"] == pytest.approx(5.5)
    assert one(storage, f"{at} and variable = 'wind_from_direction'")["value"] == 325.0
    air = one(storage, f"{at} and variable = 'air_temperature'")
    assert air["value"] == pytest.approx(21.1) and air["units"] == "degC"
    assert air["station_id"] == "urn:ioos:station:wmo:vcaf1"
    assert (air["lon"], air["lat"]) == (pytest.approx(-81.11), pytest.approx(24.71))
    # names the lake does not know ("gust", "air_pressure_at_sea_level") are not guessed at
    assert not rows(storage, "variable in ('gust', 'air_pressure_at_sea_level')")
    assert len(rows(storage, "variable = 'wind_speed'")) == 7274


def test_coops_json_in_the_streams_own_format(local_settings, registry, tmp_path: Path) -> None:
    """CO-OPS's own datagetter JSON (Seattle, January 2015, recorded) for the CO-OPS
    stream: read by the CO-OPS harvester, which needs the station and the product."""
    from tests.ingest.support import COOPS

    storage = Storage.from_settings(local_settings)
    sent = COOPS / "api/prod/datagetter/9447130_water_level_metric_201501010000-201501310000.json"
    done = contribute(storage, registry, "coops-9447130-water-level", sent, "CO-OPS")
    assert done.ok, done.record.error
    assert done.record.rows_added > 7000  # 6-minute values for 30 days
    found = rows(storage, "variable = 'water_surface_height_above_reference_datum'")
    assert len(found) == done.record.rows_added
    assert {r["station_id"] for r in found} == {"urn:ioos:station:NOAA.NOS.CO-OPS:9447130"}
