"""HTML tables as a source: NDBC's station page for TPLM2 (recorded), its table of previous
observations harvested over real HTTP; a page without the table is a recorded syntax failure
and writes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lake.raw import RawZone
from lake.storage import Storage
from tests.ingest.support import INGEST_DATA, data_records, harvest, make_stream, one, rows
from tests.support.http import Reply

PAGE = INGEST_DATA / "station_page_tplm2.html"
PATH = "/station_page.php"
VARIABLES = [
    {"source": "WSPD kts", "standard_name": "wind_speed", "units": "kn"},
    {"source": "GST kts", "standard_name": "wind_speed_of_gust", "units": "kn"},
    {"source": "PRES in", "standard_name": "air_pressure_at_mean_sea_level", "units": "inHg"},
    {"source": "ATMP °F", "standard_name": "air_temperature", "units": "degF"},
    {"source": "WTMP °F", "standard_name": "sea_surface_temperature", "units": "degF"},
]


def page_stream(url: str, **table: object):  # type: ignore[no-untyped-def]
    return make_stream(
        "tplm2-page",
        {
            "kind": "html",
            "url": url + PATH + "?station=tplm2",
            "table": {"match": "PTDY", "index": -1, "header_row": 1, **table},
            "time_columns": ["MM", "DD", "TIME (EDT)"],
            "time_format": "%m %d %I:%M %p",
            "year": "fetched",
            "timezone": "-04:00",
            "station": {"id": "tplm2", "lon": -76.436, "lat": 38.899},
            "station_urn": "urn:ioos:station:wmo:{}",
            "missing": ["-"],
        },
        variables=VARIABLES,
    )


def test_page_table_harvests_with_units_and_local_time(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes[PATH] = Reply(PAGE.read_bytes(), content_type="text/html")
    [record] = data_records(harvest(storage, page_stream(http_server.url)))
    assert record.status == "ok", record.error
    year = datetime.now(UTC).year
    # <td>08</td><td>12</td><td> 3:00&nbsp;pm</td><td>N</td><td>12</td><td>14</td>...
    #   <td>30.03</td><td>-0.03</td><td> 78.4</td><td>-</td> (EDT, UTC-4)
    at = f"time = timestamp '{year}-08-12 19:00:00'"
    assert one(storage, f"{at} and variable = 'wind_speed'")["value"] == pytest.approx(6.1733, 1e-4)
    assert one(storage, f"{at} and variable = 'wind_speed_of_gust'")["value"] == pytest.approx(
        14 * 0.514444, 1e-4
    )
    pres = one(storage, f"{at} and variable = 'air_pressure_at_mean_sea_level'")
    assert pres["value"] == pytest.approx(101693.25, 1e-6) and pres["units"] == "Pa"
    air = one(storage, f"{at} and variable = 'air_temperature'")
    assert air["value"] == pytest.approx(25.7778, 1e-4) and air["units"] == "degC"
    assert air["station_id"] == "urn:ioos:station:wmo:tplm2" and air["lat"] == 38.899
    assert not rows(storage, "variable = 'sea_surface_temperature'")  # "-" on every row
    # 23 hourly rows on the page (11 August 5 pm to 12 August 3 pm, EDT)
    assert len(rows(storage, "variable = 'wind_speed'")) == 23
    assert RawZone(storage).get("tplm2-page", str(record.raw_id)) == PAGE.read_bytes()


def test_page_without_the_table_is_a_recorded_syntax_failure(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes[PATH] = Reply(PAGE.read_bytes(), content_type="text/html")
    stream = page_stream(http_server.url, match="Spectral Wave Density")
    [record] = data_records(harvest(storage, stream))
    assert record.status == "syntax_failed"
    assert "tplm2-page" in (record.error or "") and PATH in (record.error or "")
    assert "no table containing 'Spectral Wave Density' on the page" in (record.error or "")
    assert record.raw_file and RawZone(storage).get("tplm2-page", str(record.raw_id))
    assert rows(storage) == []


def test_a_renamed_column_names_itself(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes[PATH] = Reply(PAGE.read_bytes(), content_type="text/html")
    stream = page_stream(http_server.url, header_row=0)  # the wrong row as header
    [record] = data_records(harvest(storage, stream))
    assert record.status == "syntax_failed"
    assert "column 'WSPD kts' is not in the table" in (record.error or "")
    assert rows(storage) == []


def test_fetch_year_steps_back_across_new_year() -> None:
    """Read on 1 January, a table's August rows are last year's, not this year's."""
    from ingest.html_table import HtmlTable
    from lake.raw import RawResponse

    stream = page_stream("https://www.ndbc.noaa.gov")
    raw = RawResponse(
        stream_id=stream.id,
        url=stream.source.url or "",
        body=PAGE.read_bytes(),
        fetched_at=datetime(2027, 1, 1, 3, tzinfo=UTC),
    )
    parsed = HtmlTable().parse(stream, raw, "raw/page")
    years = {t.year for t in parsed.rows.column("time").to_pylist()}
    assert years == {2026}
    august = HtmlTable().parse(
        stream, replace(raw, fetched_at=datetime(2026, 8, 13, tzinfo=UTC)), "r"
    )
    assert {t.year for t in august.rows.column("time").to_pylist()} == {2026}
