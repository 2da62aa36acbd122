"""The generic CSV/text harvester, configured in the registry, on NDBC's latest_obs table."""

from __future__ import annotations

import pytest

from lake.storage import Storage
from tests.ingest.support import NDBC, harvest, make_stream, one, rows

LATEST = NDBC / "data/latest_obs/latest_obs.txt"


def latest(url: str, **changes):
    source = {
        "kind": "csv",
        "url": url,
        "path": "latest_obs.txt",
        "delimiter": "whitespace",
        "header_prefix": "#",
        "skip_rows": 1,
        "time_columns": ["YYYY", "MM", "DD", "hh", "mm"],
        "time_format": "%Y %m %d %H %M",
        "timezone": "UTC",
        "station_column": "STN",
        "station_urn": "urn:ioos:station:wmo:{}",
        "lon_column": "LON",
        "lat_column": "LAT",
        "missing": ["MM"],
    }
    source.update(changes)
    variables = [
        {"source": "WSPD", "standard_name": "wind_speed", "units": "m/s"},
        {"source": "ATMP", "standard_name": "air_temperature", "units": "degC"},
        {"source": "PRES", "standard_name": "air_pressure_at_mean_sea_level", "units": "hPa"},
    ]
    return make_stream(
        "latest-obs", {k: v for k, v in source.items() if v is not None}, variables=variables
    )


def test_values_positions_and_stations(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/latest_obs/latest_obs.txt"] = LATEST
    [record] = harvest(storage, latest(f"{http_server.url}/latest_obs"))
    assert record.status == "ok", record.error
    # "22101  37.24   126.02  2018 07 30 21 00 190   1.0    MM ... 1005.3    MM  23.9"
    where = "station_id = 'urn:ioos:station:wmo:22101' and time = timestamp '2018-07-30 21:00:00'"
    wind = one(storage, f"{where} and variable = 'wind_speed'")
    assert wind["value"] == pytest.approx(1.0) and wind["units"] == "m s-1"
    assert (wind["lon"], wind["lat"]) == (pytest.approx(126.02), pytest.approx(37.24))
    pres = one(storage, f"{where} and variable = 'air_pressure_at_mean_sea_level'")
    assert pres["value"] == pytest.approx(100530.0) and pres["units"] == "Pa"
    assert one(storage, f"{where} and variable = 'air_temperature'")["value"] == pytest.approx(23.9)
    stations = {r["station_id"] for r in rows(storage)}
    assert len(stations) > 500
    from lake.stations import StationTable

    known = {s["station_id"]: s for s in StationTable(storage).read().to_pylist()}
    # every station of the feed, for the catalog and maps (some report only missing values)
    assert set(known) >= stations
    assert (
        known["urn:ioos:station:wmo:22101"]["lat"],
        known["urn:ioos:station:wmo:22101"]["lon"],
    ) == (
        pytest.approx(37.24),
        pytest.approx(126.02),
    )


def test_time_zone_missing_is_a_clear_failure(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/latest_obs/latest_obs.txt"] = LATEST
    [record] = harvest(storage, latest(f"{http_server.url}/latest_obs", timezone=None))
    assert record.status == "syntax_failed"
    assert "latest-obs" in (record.error or "") and "/latest_obs/latest_obs.txt" in (
        record.error or ""
    )
    assert "no time zone" in (record.error or "") and "source.timezone" in (record.error or "")
    assert not rows(storage)


def test_unknown_unit_is_a_clear_failure(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/latest_obs/latest_obs.txt"] = LATEST
    stream = latest(f"{http_server.url}/latest_obs")
    bad = stream.model_copy(
        update={
            "variables": [
                stream.variables[0].model_copy(update={"units": "furlongs per fortnightish"})
            ]
        }
    )
    [record] = harvest(storage, bad)
    assert record.status == "syntax_failed"
    assert "column WSPD" in (record.error or "") and "unknown unit 'furlongs per fortnightish'" in (
        record.error or ""
    )
    assert "/latest_obs/latest_obs.txt" in (record.error or "") and "latest-obs" in (
        record.error or ""
    )
    assert not rows(storage)
