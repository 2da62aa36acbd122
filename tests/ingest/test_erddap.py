"""ERDDAP tabledap: variables discovered from the info page, the data request the same as
the recorded one, values against the recorded .csvp."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from ingest.erddap import Erddap, parse_info
from lake.stations import StationTable
from lake.storage import Storage
from tests.ingest.support import ERDDAP, INGEST_DATA, harvest, make_stream, one, rows

RECORDED_QUERY = (
    "ISO_6%2Ctime&time%3E=248011200.0&time%3C=1548504000.0&latitude%3E=10&latitude%3C=10"
    "&longitude%3E=265&longitude%3C=265"
)


def tao(url: str, variables: bool = True):
    return make_stream(
        "tao-10n95w",
        {
            "kind": "erddap",
            "url": url,
            "dataset": "pmelTao5dayIso",
            "naming_authority": "gtmba",
            "station": {
                "id": "10n95w",
                "lat": 10.0,
                "lon": -95.0,
                "constraints": {"latitude": 10, "longitude": 265},
            },
        },
        variables=[
            {
                "source": "ISO_6",
                "standard_name": "depth_of_isosurface_of_sea_water_potential_temperature",
                "units": "m",
            }
        ]
        if variables
        else [],
    )


def test_tabledap_values_and_discovered_attributes(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/erddap/info/pmelTao5dayIso/index.csv"] = (
        ERDDAP / "info/pmelTao5dayIso/index.csv"
    )
    path = f"/erddap/tabledap/pmelTao5dayIso.csvp?{RECORDED_QUERY}"
    http_server.routes[path] = ERDDAP / "tabledap/pmelTao5dayIso/10n95w.csvp"
    stream = tao(f"{http_server.url}/erddap")
    since = datetime.fromtimestamp(248011200, UTC)
    until = datetime.fromtimestamp(1548504000, UTC)
    records = harvest(storage, stream, since=since, until=until)
    assert [r.status for r in records] == ["ok", "ok"], records
    assert path in [p for p, _ in http_server.hits]  # exactly the recorded request
    # "14.802495,1999-12-02T12:00:00Z" (ISO_6 in m; depth positive down in the dataset)
    first = one(storage, "time = timestamp '1999-12-02 12:00:00'")
    assert first["station_id"] == "urn:ioos:station:gtmba:10n95w"
    assert first["variable"] == "depth_of_isosurface_of_sea_water_potential_temperature"
    assert first["value"] == pytest.approx(14.802495) and first["units"] == "m"
    last = one(storage, "time = timestamp '2003-10-28 12:00:00'")
    assert last["value"] == pytest.approx(17.467018)
    text = (ERDDAP / "tabledap/pmelTao5dayIso/10n95w.csvp").read_text().splitlines()[1:]
    filled = [line for line in text if line.split(",")[0] not in ("", "NaN")]
    assert len(rows(storage)) == len(filled)
    [station] = StationTable(storage).read().to_pylist()
    assert station["provider"] == "NOAA PMEL, TAO/TRITON, RAMA, PIRATA"
    assert "TAO/TRITON" in station["attributes"]


def test_info_page_discovers_variables_units_and_missing_values() -> None:
    text = (ERDDAP / "info/pmelTao5dayIso/index.csv").read_text(encoding="latin-1")
    info = parse_info(text, stream_id="s", url="u", raw_file="r")
    assert info.data_variables() == ["ISO_6"]  # QI_5006 is a quality code, not data
    assert info.variables["ISO_6"]["units"] == "m"
    assert info.variables["ISO_6"]["missing_value"] == "1.0E35"
    assert info.globals["cdm_data_type"] == "TimeSeries"
    # a dataset whose variables carry CF standard names needs no registry variables
    cap2 = parse_info(
        (INGEST_DATA / "org_cormp_cap2_index.csv").read_text(encoding="latin-1"),
        stream_id="s",
        url="u",
        raw_file="r",
    )
    harvester = Erddap()
    harvester.info = cap2
    mapping = harvester.column_mapping(tao("http://x/erddap", variables=False))
    assert mapping, cap2.data_variables()
    assert set(mapping) >= {"sea_water_temperature", "wind_speed", "sea_water_practical_salinity"}
    assert not [n for n in mapping if "_qc_" in n]
    assert mapping["wind_speed"].units == "m.s-1"
    # and the data request then names those variables
    url = harvester.requests(tao("http://x/erddap", variables=False), datetime(2020, 1, 1), None)[
        0
    ].url
    assert set(unquote(url.split("?")[1].split("&")[0]).split(",")) >= set(mapping)


def test_empty_window_is_no_new_data_not_a_failure(http_server, local_settings) -> None:
    """ERDDAP answers a window without rows with 404 and this error body."""
    from tests.support.http import Reply

    storage = Storage.from_settings(local_settings)
    http_server.routes["/erddap/info/pmelTao5dayIso/index.csv"] = (
        ERDDAP / "info/pmelTao5dayIso/index.csv"
    )
    http_server.routes["/erddap/tabledap/pmelTao5dayIso.csvp"] = Reply(
        b'Error {\n    code=404;\n    message="Not Found: Your query produced no matching '
        b'results. (nRows = 0)";\n}\n',
        404,
        "text/plain; charset=UTF-8",
    )
    records = harvest(storage, tao(f"{http_server.url}/erddap"))
    assert [r.status for r in records] == ["ok", "ok"], records
    assert records[1].rows_added == 0 and not rows(storage)
