"""CO-OPS datagetter and mdapi over real HTTP at the API's paths; values against the
recorded JSON read by eye."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ingest.coops import Coops, parse_coops_json, source_units
from ingest.normalize import convert
from lake.registry import Stream
from lake.stations import StationTable
from lake.storage import Storage
from tests.ingest.support import COOPS, INGEST_DATA, data_records, harvest, make_stream, one

WATER_LEVEL = (
    COOPS / "api/prod/datagetter/9447130_water_level_metric_201501010000-201501310000.json"
)
#: The recorded request (MANIFEST.md): what our request must ask for too.
RECORDED = (
    "https://api.tidesandcurrents.noaa.gov/api/prod/datagetter?begin_date=20150101+00%3A00"
    "&end_date=20150131+00%3A00&station=9447130&product=water_level&datum=MLLW&units=metric"
    "&time_zone=gmt&application=noaa_coops&format=json"
)


def seattle(url: str, **source: Any) -> Stream:
    return make_stream(
        "coops-seattle",
        {"kind": "coops", "url": url, "product": "water_level", "stations": ["9447130"], **source},
    )


def test_water_level_values_flags_and_station_metadata(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/api/prod/datagetter"] = WATER_LEVEL
    http_server.routes["/mdapi/prod/webapi/stations/9447130.json"] = (
        COOPS / "mdapi/prod/webapi/stations/9447130.json"
    )
    stream = seattle(http_server.url, application="noaa_coops")
    since, until = datetime(2015, 1, 1, tzinfo=UTC), datetime(2015, 1, 31, tzinfo=UTC)
    records = harvest(storage, stream, since=since, until=until)
    assert [r.status for r in records] == ["ok", "ok"], records
    # the data request asks exactly what the recorded one asked
    [asked] = [p for p, _ in http_server.hits if p.startswith("/api/prod/datagetter")]
    assert parse_qs(urlsplit(asked).query) == parse_qs(urlsplit(RECORDED).query)
    # {"t":"2015-01-01 00:00", "v":"1.798", "s":"0.023", "f":"0,0,0,0", "q":"v"}
    first = one(storage, "time = timestamp '2015-01-01 00:00:00'")
    assert first["station_id"] == "urn:ioos:station:NOAA.NOS.CO-OPS:9447130"
    assert first["variable"] == "water_surface_height_above_reference_datum"
    assert first["value"] == pytest.approx(1.798) and first["units"] == "m"
    assert first["provider_flag"] == "f=0,0,0,0;q=v;s=0.023"
    assert (first["lon"], first["lat"]) == (pytest.approx(-122.3393), pytest.approx(47.6026))
    assert one(storage, "time = timestamp '2015-01-01 00:06:00'")["value"] == pytest.approx(1.718)
    # mdapi: name, position and affiliations for the catalog
    station = StationTable(storage).read().to_pylist()
    [seattle_row] = [s for s in station if s["name"] == "Seattle"]
    assert seattle_row["lat"] == pytest.approx(47.60264)
    assert "NWLON" in seattle_row["attributes"]


def test_backfill_split_into_31_day_windows(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/api/prod/datagetter"] = WATER_LEVEL
    http_server.routes["/mdapi/prod/webapi/stations/9447130.json"] = (
        COOPS / "mdapi/prod/webapi/stations/9447130.json"
    )
    stream = seattle(http_server.url)
    since, until = datetime(2015, 1, 1), datetime(2015, 3, 15)
    requests = Coops().requests(stream, since, until)
    spans = [
        (
            parse_qs(urlsplit(r.url).query)["begin_date"][0],
            parse_qs(urlsplit(r.url).query)["end_date"][0],
        )
        for r in requests
    ]
    assert spans == [
        ("20150101 00:00", "20150201 00:00"),
        ("20150201 00:00", "20150304 00:00"),
        ("20150304 00:00", "20150315 00:00"),
    ]
    records = data_records(harvest(storage, stream, since=since, until=until))
    assert len(records) == 3
    # the server answers every window with the January file: written once, unchanged after
    assert records[0].status == "ok" and records[0].rows_added == 7201
    assert all(r.rows_added == 0 for r in records[1:])


def test_water_temperature_legacy_endpoint_values(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/api/prod/datagetter"] = (
        INGEST_DATA / "8723970_water_temperature_20140927-28_metric_gmt.json"
    )
    http_server.routes["/mdapi/prod/webapi/stations/8723970.json"] = b"{}"
    stream = make_stream(
        "coops-vaca",
        {
            "kind": "coops",
            "url": http_server.url,
            "product": "water_temperature",
            "stations": ["8723970"],
        },
    )
    records = harvest(
        storage, stream, since=datetime(2014, 9, 27), until=datetime(2014, 9, 28, 23, 54)
    )
    [data] = data_records(records)
    assert data.status == "ok", data.error
    # metadata without a 'stations' list is recorded as unreadable, the data still land
    [meta] = [r for r in records if r not in (data,)]
    assert meta.status == "syntax_failed" and "stations" in (meta.error or "")
    # {"t":"2014-09-27 00:00", "v":"30.1", "f":"0,0,0"}
    row = one(storage, "time = timestamp '2014-09-27 00:00:00'")
    assert row["variable"] == "sea_water_temperature"
    assert row["value"] == pytest.approx(30.1) and row["units"] == "degC"
    assert row["provider_flag"] == "f=0,0,0"


def test_english_units_are_read_as_feet_fahrenheit_knots() -> None:
    """No english-unit response was recorded (MANIFEST gaps), so this checks what the
    harvester declares for units=english and that the conversion is pint's."""
    stream = make_stream(
        "coops-english",
        {
            "kind": "coops",
            "products": ["water_level", "air_temperature", "wind"],
            "units": "english",
            "station": "9447130",
        },
    )
    mapping = Coops().column_mapping(stream)
    assert mapping["water_level"].units == "ft"
    assert mapping["air_temperature"].units == "degF"
    assert mapping["wind_speed"].units == "kn" and mapping["wind_gust"].units == "kn"
    assert source_units("conductivity", "english") == "mS/cm"
    import numpy as np

    assert convert(np.array([1.798 / 0.3048]), "ft", "m")[0] == pytest.approx(1.798)
    assert convert(np.array([86.18]), "degF", "degC")[0] == pytest.approx(30.1)
    assert convert(np.array([10.0]), "kn", "m s-1")[0] == pytest.approx(5.14444, rel=1e-4)
    url = Coops().requests(stream, datetime(2024, 1, 1), datetime(2024, 1, 2))[0].url
    assert parse_qs(urlsplit(url).query)["units"] == ["english"]


def test_coops_error_reply_names_coops_message() -> None:
    body = (
        b'{"error": {"message": "No data was found. This product may not be offered at this'
        b' station at the requested time."}}'
    )
    from lake.errors import ParseError

    with pytest.raises(ParseError, match="CO-OPS says: No data was found") as err:
        parse_coops_json(
            body,
            stream_id="s",
            url="http://x/api",
            raw_file="raw/ab",
            product="wind",
            units="metric",
            station="9447130",
        )
    assert err.value.url == "http://x/api"
