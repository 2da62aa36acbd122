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
    assert RawZone(storage).get("ndbc-latest-obs", record.raw_id) == LATEST.read_bytes()
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
    assert "latest-cut.txt" in refused.record.error and "truncated" in refused.record.error
    netcdf = tmp_path / "broken.nc"
    netcdf.write_bytes(TAO_NC.read_bytes()[:3000])
    broken = contribute(storage, registry, "erddap-tao-10n95w-iso", netcdf, "GTMBA")
    assert not broken.ok and "broken.nc" in broken.record.error
    assert "not a readable NetCDF file" in broken.record.error
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
