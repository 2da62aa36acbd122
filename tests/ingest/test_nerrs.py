"""NERRS CDMO export: local standard time to UTC, units converted, CDMO flags verbatim."""

from __future__ import annotations

import pytest

from lake.storage import Storage
from tests.ingest.support import NERRS, harvest, make_stream, one, rows


def bangs_lake(url: str, offset: float | None = -6):
    station = {"id": "gndblwq", "name": "Bangs Lake", "lat": 30.3571, "lon": -88.4629}
    if offset is not None:
        station["utc_offset"] = offset
    return make_stream(
        "nerrs-gndblwq", {"kind": "nerrs", "url": url, "years": [2021], "stations": [station]}
    )


def test_values_time_and_flags(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/exports/gndblwq2021.csv"] = NERRS / "gndblwq2021.csv"
    [record] = harvest(storage, bangs_lake(f"{http_server.url}/exports"))
    assert record.status == "ok", record.error
    # "gndblwq ,P,7/2/2021 0:00,...,30.7,<0> ,13.73,<0> ,7.9,<0> ,52.4,<1> [SDO] (CCU),3.8,..."
    # 0:00 local standard time (UTC-6) is 06:00 UTC
    at = "time = timestamp '2021-07-02 06:00:00'"
    temp = one(storage, f"{at} and variable = 'sea_water_temperature'")
    assert temp["station_id"] == "urn:ioos:station:nerrs:gndblwq"
    assert temp["value"] == pytest.approx(30.7) and temp["units"] == "degC"
    assert temp["provider_flag"] == "<0>"
    cond = one(storage, f"{at} and variable = 'sea_water_electrical_conductivity'")
    assert cond["value"] == pytest.approx(1.373) and cond["units"] == "S m-1"  # 13.73 mS/cm
    sat = one(storage, f"{at} and variable = 'fractional_saturation_of_oxygen_in_sea_water'")
    assert sat["value"] == pytest.approx(0.524) and sat["provider_flag"] == "<1> [SDO] (CCU)"
    do = one(storage, f"{at} and variable = 'mass_concentration_of_oxygen_in_sea_water'")
    assert do["value"] == pytest.approx(0.0038) and do["units"] == "kg m-3"  # 3.8 mg/L
    assert (temp["lon"], temp["lat"]) == (pytest.approx(-88.4629), pytest.approx(30.3571))
    # "8/31/2021 23:45 ... ,<-2> [GSM]": missing values carry no row
    assert not rows(storage, "time = timestamp '2021-09-01 05:45:00'")


def test_station_without_utc_offset_is_refused(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/exports/gndblwq2021.csv"] = NERRS / "gndblwq2021.csv"
    [record] = harvest(storage, bangs_lake(f"{http_server.url}/exports", offset=None))
    assert record.status == "syntax_failed"
    assert "nerrs-gndblwq" in (record.error or "") and "gndblwq2021.csv" in (record.error or "")
    assert "no time zone" in (record.error or "")
    assert record.raw_file  # the bytes are kept for the data manager
    assert not rows(storage)
