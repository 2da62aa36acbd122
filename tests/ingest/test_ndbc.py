"""NDBC: spectral wave summary, continuous winds, and the yearly history files, served over
real HTTP at their NDBC URL paths; values checked against the files read by eye."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.ndbc import NdbcRealtime
from lake.reader import Lake
from tests.ingest.support import NDBC, data_records, harvest, make_stream, one, rows

HISTORY_PATH = "/view_text_file.php?filename=tplm2h2021.txt.gz&dir=data/historical/stdmet/"


def test_spectral_summary_values_and_compass_directions(http_server, local_settings) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44013.spec"] = NDBC / "data/realtime2/44013.spec"
    stream = make_stream(
        "spec-44013",
        {"kind": "ndbc", "url": http_server.url, "file": "spec", "stations": [{"id": "44013"}]},
    )
    [record] = data_records(harvest(storage, stream))
    assert record.status == "ok", record.error
    # "2022 06 05 12 40  0.5  0.3  6.7  0.4  3.0   E WNW        N/A  3.5 100"
    at = "station_id = 'urn:ioos:station:wmo:44013' and time = timestamp '2022-06-05 12:40:00'"
    swell = one(storage, f"{at} and variable = 'sea_surface_swell_wave_significant_height'")
    assert swell["value"] == pytest.approx(0.3) and swell["units"] == "m"
    period = one(storage, f"{at} and variable = 'sea_surface_swell_wave_period'")
    assert period["value"] == pytest.approx(6.7) and period["units"] == "s"
    swell_dir = one(storage, f"{at} and variable = 'sea_surface_swell_wave_from_direction'")
    assert swell_dir["value"] == 90.0 and swell_dir["units"] == "degree"  # E
    wind_dir = one(storage, f"{at} and variable = 'sea_surface_wind_wave_from_direction'")
    assert wind_dir["value"] == 292.5  # WNW
    # STEEPNESS is text ("N/A", "SWELL", ...): not stored as a number
    assert not rows(storage, "variable ilike '%steep%'")


def test_continuous_winds_with_missing_gusts(http_server, storage) -> None:
    """On a local folder and on S3 (moto): raw zone, table and harvest log alike."""
    http_server.routes["/data/realtime2/TPLM2.cwind"] = NDBC / "data/realtime2/TPLM2.cwind"
    http_server.routes["/activestations.xml"] = NDBC / "activestations.xml"
    stream = make_stream(
        "cwind-tplm2",
        {"kind": "ndbc", "url": http_server.url, "file": "cwind", "stations": ["TPLM2"]},
    )
    [record] = data_records(harvest(storage, stream))
    assert record.status == "ok", record.error
    # "2022 06 05 13 00 028  7.7  30 11.8 1231"
    at = "station_id = 'urn:ioos:station:wmo:tplm2' and time = timestamp '2022-06-05 13:00:00'"
    assert one(storage, f"{at} and variable = 'wind_speed'")["value"] == pytest.approx(7.7)
    assert one(storage, f"{at} and variable = 'wind_from_direction'")["value"] == 28.0
    assert one(storage, f"{at} and variable = 'wind_speed_of_gust'")["value"] == pytest.approx(11.8)
    assert one(storage, f"{at} and variable = 'wind_gust_from_direction'")["value"] == 30.0
    # "2022 06 05 12 50 031  8.2 999 99.0 9999": the gust is missing, the wind is not
    at2 = "station_id = 'urn:ioos:station:wmo:tplm2' and time = timestamp '2022-06-05 12:50:00'"
    assert [r["variable"] for r in rows(storage, at2)] == ["wind_from_direction", "wind_speed"]
    from lake.raw import RawZone
    from lake.stations import StationTable

    assert RawZone(storage).get("cwind-tplm2", str(record.raw_id))[:5] == b"#YY  "
    # activestations.xml: <station id="tplm2" lat="38.899" lon="-76.436" elev="0"
    #   name="Thomas Point, MD" owner="NDBC" pgm="NDBC Meteorological/Ocean" type="fixed" .../>
    [station] = StationTable(storage).read().to_pylist()
    assert station["station_id"] == "urn:ioos:station:wmo:tplm2"
    assert station["name"] == "Thomas Point, MD" and station["wmo_id"] == "TPLM2"
    assert (station["lat"], station["lon"]) == (38.899, -76.436)
    assert station["provider"] == "NDBC" and station["platform"] == "fixed"


def test_missing_station_file_names_the_404(http_server, local_settings) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    stream = make_stream(
        "cwind-gone",
        {"kind": "ndbc", "url": http_server.url, "file": "cwind", "stations": ["XXXX1"]},
    )
    [record] = data_records(harvest(storage, stream))
    assert record.status == "fetch_failed"
    assert "cwind-gone" in (record.error or "") and "/data/realtime2/XXXX1.cwind" in (
        record.error or ""
    )
    assert "HTTP 404" in (record.error or "") and "the server said: 404 Not Found" in (
        record.error or ""
    )


@pytest.mark.slow
def test_backfill_reads_yearly_history_and_realtime_together(http_server, local_settings) -> None:
    """Backfill before the real-time file's 45 days: one history file per year, fetched at
    NDBC's real view_text_file.php URL, plus the real-time file; one dataset, one query."""
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes[HISTORY_PATH] = NDBC / "data/historical/stdmet/tplm2h2021.txt"
    http_server.routes["/data/realtime2/TPLM2.cwind"] = NDBC / "data/realtime2/TPLM2.cwind"
    stream = make_stream(
        "tplm2-wind",
        {
            "kind": "ndbc",
            "url": http_server.url,
            "file": "cwind",
            "history": "stdmet",
            "stations": ["TPLM2"],
        },
    )
    since = datetime(2021, 1, 1, tzinfo=UTC)
    requests = NdbcRealtime().requests(stream, since, None)
    labels = [r.label for r in requests]
    # realtime first (lowest rank), then this year's months, then the years; history read
    # last wins where files overlap
    assert labels[0] == "TPLM2 realtime2" and labels[
        -len(range(2021, datetime.now(UTC).year)) :
    ] == [f"TPLM2 yearly {y}" for y in range(2021, datetime.now(UTC).year)]
    # Only 2021 is recorded: ask for 2021 alone, then the real-time file.
    records = data_records(
        harvest(storage, stream, since=since, until=datetime(2021, 12, 31, 23, 59))
    )
    assert [r.status for r in records] == ["ok"], records
    assert any(path == HISTORY_PATH for path, _ in http_server.hits)
    [realtime] = data_records(harvest(storage, stream))
    assert realtime.status == "ok", realtime.error
    # tplm2h2021.txt: "2021 01 01 00 00 336  5.2  6.1 ... 1028.3": PRES is not a wind column
    at = "station_id = 'urn:ioos:station:wmo:tplm2' and time = timestamp '2021-01-01 00:00:00'"
    assert one(storage, f"{at} and variable = 'wind_speed'")["value"] == pytest.approx(5.2)
    assert one(storage, f"{at} and variable = 'wind_from_direction'")["value"] == 336.0
    assert not rows(storage, f"{at} and variable like 'air_pressure%'")
    # History and real time are the same rows of one dataset, found by one query.
    span = (
        Lake(storage)
        .sql(
            "select min(time) as first, max(time) as last, count(*) as n from observations "
            "where dataset_id = 'tplm2-wind' and variable = 'wind_speed'"
        )
        .to_pylist()[0]
    )
    assert span["first"] == datetime(2021, 1, 1, 0, 0)
    assert span["last"] == datetime(2022, 6, 5, 13, 0)
    series = Lake(storage).series(
        "tplm2-wind",
        "urn:ioos:station:wmo:tplm2",
        datetime(2021, 12, 31),
        datetime(2022, 12, 31),
        ["wind_speed"],
    )
    assert series.sizes["time"] > 1000  # only the 2022 real-time rows fall in this window


def test_history_stdmet_values_with_unit_conversion(http_server, local_settings) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes[HISTORY_PATH] = NDBC / "data/historical/stdmet/tplm2h2021.txt"
    stream = make_stream(
        "tplm2-stdmet",
        {"kind": "ndbc", "url": http_server.url, "file": "txt", "stations": ["TPLM2"]},
    )
    since, until = datetime(2021, 1, 1), datetime(2021, 1, 1, 2)
    [record] = data_records(harvest(storage, stream, since=since, until=until))
    assert record.status == "ok", record.error
    at = "time = timestamp '2021-01-01 02:00:00'"
    # "2021 01 01 02 00 334  6.2  6.9 99.00 99.00 99.00 999 1029.2   5.0   5.0  -0.8 99.0 99.00"
    pres = one(storage, f"{at} and variable = 'air_pressure_at_mean_sea_level'")
    assert pres["value"] == pytest.approx(102920.0) and pres["units"] == "Pa"
    assert one(storage, f"{at} and variable = 'dew_point_temperature'")["value"] == -0.8
    assert not rows(storage, f"{at} and variable = 'sea_surface_wave_significant_height'")
    # the window keeps only 00:00-02:00 of the year
    assert {r["time"].hour for r in rows(storage)} == {0, 1, 2}
    assert data_records([record])
