"""Bad input, for every source kind: each fault is a clear record naming the stream, the URL
and what was wrong; nothing is written, and what the lake already held is untouched.

Faults are made from the real recorded files (cut short, a column renamed, a unit changed)
or are real HTTP behaviour of the local server (status codes, a slow answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coastlake.harvest import HarvestOptions, harvest_streams
from lake.raw import RawZone
from lake.storage import Storage
from tests.ingest.support import (
    COOPS,
    ERDDAP,
    NDBC,
    NERRS,
    QUICK,
    data_records,
    harvest,
    make_stream,
    rows,
)
from tests.support.http import Reply

HTML = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><h1>Service Temporarily Unavailable</h1><p>The server is down for maintenance."
    b"</p></body></html>"
)


@dataclass
class Case:
    kind: str
    data_path: str  # the URL path of the data request
    file: Path
    routes: dict[str, Path]
    source: dict[str, Any]
    variables: list[dict[str, str]]
    rename: tuple[bytes, bytes]  # a column renamed in the body
    renamed: str  # the column the message must name
    unit: tuple[bytes, bytes] | None = None  # a unit renamed to an unknown one

    def stream(self, url: str):
        return make_stream(
            f"faulty-{self.kind}",
            {**self.source, "url": url + self.source["url"]},
            variables=self.variables,
        )


CASES = [
    Case(
        "ndbc",
        "/data/realtime2/44029.ocean",
        NDBC / "data/realtime2/44029.ocean",
        {},
        {"kind": "ndbc", "url": "", "file": "ocean", "stations": ["44029"]},
        [
            {"source": "OTMP", "standard_name": "sea_water_temperature", "units": "degC"},
            {"source": "SAL", "standard_name": "sea_water_practical_salinity", "units": "psu"},
        ],
        (b"OTMP", b"OTEMP"),
        "OTMP",
        (b"degC", b"degK-ish"),
    ),
    Case(
        "coops",
        "/api/prod/datagetter",
        COOPS / "api/prod/datagetter/9447130_water_level_metric_201501010000-201501310000.json",
        {
            "/mdapi/prod/webapi/stations/9447130.json": COOPS
            / "mdapi/prod/webapi/stations/9447130.json"
        },
        {"kind": "coops", "url": "", "product": "water_level", "station": "9447130"},
        [],
        (b'"v":', b'"value":'),
        "'v'",
    ),
    Case(
        "erddap",
        "/erddap/tabledap/pmelTao5dayIso.csvp",
        ERDDAP / "tabledap/pmelTao5dayIso/10n95w.csvp",
        {"/erddap/info/pmelTao5dayIso/index.csv": ERDDAP / "info/pmelTao5dayIso/index.csv"},
        {
            "kind": "erddap",
            "url": "/erddap",
            "dataset": "pmelTao5dayIso",
            "station": {"id": "10n95w", "constraints": {"latitude": 10, "longitude": 265}},
        },
        [
            {
                "source": "ISO_6",
                "standard_name": "depth_of_isosurface_of_sea_water_potential_temperature",
                "units": "m",
            }
        ],
        (b"ISO_6 (m)", b"ISO6 (m)"),
        "ISO_6",
        (b"ISO_6 (m)", b"ISO_6 (metres-ish)"),
    ),
    Case(
        "nerrs",
        "/exports/gndblwq2021.csv",
        NERRS / "gndblwq2021.csv",
        {},
        {
            "kind": "nerrs",
            "url": "/exports",
            "years": [2021],
            "stations": [{"id": "gndblwq", "utc_offset": -6}],
        },
        [
            {"source": "Temp", "standard_name": "sea_water_temperature", "units": "degC"},
            {"source": "Sal", "standard_name": "sea_water_practical_salinity", "units": "psu"},
        ],
        (b",Temp,", b",Temperature,"),
        "Temp",
    ),
    Case(
        "csv",
        "/latest_obs/latest_obs.txt",
        NDBC / "data/latest_obs/latest_obs.txt",
        {},
        {
            "kind": "csv",
            "url": "/latest_obs",
            "path": "latest_obs.txt",
            "delimiter": "whitespace",
            "header_prefix": "#",
            "skip_rows": 1,
            "time_columns": ["YYYY", "MM", "DD", "hh", "mm"],
            "time_format": "%Y %m %d %H %M",
            "timezone": "UTC",
            "station_column": "STN",
            "lon_column": "LON",
            "lat_column": "LAT",
            "missing": ["MM"],
        },
        [{"source": "WSPD", "standard_name": "wind_speed", "units": "m/s"}],
        (b" WSPD ", b" WSPD_MS "),
        "WSPD",
    ),
]


def cut_mid_line(body: bytes) -> bytes:
    """The file cut 5 bytes into a line two thirds of the way through (or just there, for
    a body that is one long line, like JSON)."""
    at = body.find(b"\n", len(body) * 2 // 3)
    if at == -1 or at > len(body) - 10:
        return body[: len(body) * 2 // 3]
    return body[: at + 6]


def faults(case: Case) -> list[tuple[str, Callable[[bytes], Reply], str, str]]:
    """(name, reply from the good bytes, expected status, words the message must hold)."""
    out = [
        ("html", lambda b: Reply(HTML, 200, "text/html"), "syntax_failed", "HTML"),
        ("truncated", lambda b: Reply(cut_mid_line(b)), "syntax_failed", "truncated"),
        ("empty", lambda b: Reply(b""), "syntax_failed", "empty"),
        (
            "404",
            lambda b: Reply(b"<html><body>Not Found</body></html>", 404, "text/html"),
            "fetch_failed",
            "HTTP 404",
        ),
        ("500", lambda b: Reply(b"Internal Server Error", 500), "fetch_failed", "HTTP 500"),
        ("timeout", lambda b: Reply(b, delay_s=1.2), "fetch_failed", "timeout"),
        (
            "renamed column",
            lambda b: Reply(b.replace(*case.rename)),
            "syntax_failed",
            case.renamed,
        ),
    ]
    if case.unit:
        old, new = case.unit
        out.append(
            ("unknown unit", lambda b: Reply(b.replace(old, new, 1)), "syntax_failed", "unit")
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_every_fault_is_named_and_harmless(case: Case, http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    for path, file in case.routes.items():
        http_server.routes[path] = file
    good = case.file.read_bytes()
    http_server.routes[case.data_path] = Reply(good)
    stream = case.stream(http_server.url)
    [first] = data_records(harvest(storage, stream, conditional=False))
    assert first.status == "ok", first.error
    before = rows(storage)
    assert before
    for name, reply, status, words in faults(case):
        http_server.routes[case.data_path] = reply(good)
        http_server.hits.clear()
        [record] = data_records(harvest(storage, stream, conditional=False, policy=QUICK))
        assert record.status == status, (name, record)
        assert stream.id in (record.error or ""), (name, record.error)
        assert case.data_path.split("?")[0] in (record.error or ""), (name, record.error)
        assert words in (record.error or ""), (name, record.error)
        if status == "syntax_failed":  # the bytes are kept for the data manager
            assert (
                record.raw_file
                and RawZone(storage).get(stream.id, str(record.raw_id)) == reply(good).body
            )
        if name == "500":  # retried, then given up
            assert (
                sum(p.startswith(case.data_path) for p, _ in http_server.hits) == QUICK.retries + 1
            )
        assert rows(storage) == before, f"{name} changed the lake"


def test_one_bad_stream_does_not_stop_the_others(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44029.ocean"] = NDBC / "data/realtime2/44029.ocean"
    http_server.routes["/data/realtime2/44013.spec"] = Reply(HTML, 200, "text/html")
    bad = make_stream(
        "bad", {"kind": "ndbc", "url": http_server.url, "file": "spec", "stations": ["44013"]}
    )
    good = make_stream(
        "good", {"kind": "ndbc", "url": http_server.url, "file": "ocean", "stations": ["44029"]}
    )
    records = data_records(
        harvest_streams(storage, [bad, good], HarvestOptions(policy=QUICK), qc_step=None)
    )
    assert [(r.stream_id, r.status) for r in records] == [("bad", "syntax_failed"), ("good", "ok")]
    assert {r["dataset_id"] for r in rows(storage)} == {"good"}


def test_a_crashing_step_fails_its_stream_only(http_server, local_settings) -> None:
    """A later stage (QC) raising on one stream's rows: that request is recorded as failed
    with the error, nothing of it is written, and the next stream is harvested."""
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44029.ocean"] = NDBC / "data/realtime2/44029.ocean"
    http_server.routes["/data/realtime2/44013.spec"] = NDBC / "data/realtime2/44013.spec"
    spec = make_stream(
        "spec", {"kind": "ndbc", "url": http_server.url, "file": "spec", "stations": ["44013"]}
    )
    ocean = make_stream(
        "ocean", {"kind": "ndbc", "url": http_server.url, "file": "ocean", "stations": ["44029"]}
    )

    def step(storage, stream, rows):
        if stream.id == "spec":
            raise ValueError("A LinearRing must have at least 3 coordinate tuples")
        return rows

    records = data_records(
        harvest_streams(storage, [spec, ocean], HarvestOptions(policy=QUICK), qc_step=step)
    )
    assert [(r.stream_id, r.status) for r in records] == [("spec", "failed"), ("ocean", "ok")]
    assert "ValueError" in (records[0].error or "") and "LinearRing" in (records[0].error or "")
    assert {r["dataset_id"] for r in rows(storage)} == {"ocean"}
