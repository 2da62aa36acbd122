"""Requests an attacker would send to `lake serve`, each answered with a 4xx naming what was
wrong, within seconds, while /healthz keeps answering and the lake's files stay the same."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.hostile.conftest import ANSWER_WITHIN_S, Served

#: Every test here: the lake byte for byte unchanged and /healthz alive afterwards.
pytestmark = pytest.mark.usefixtures("lake_unchanged_and_alive")


def refused(r: httpx.Response, *words: str) -> bool:
    """Whether `r` is a 4xx, answered in time, whose body names the fault (each of `words`);
    the first that fails says which and shows the answer."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.elapsed.total_seconds() < ANSWER_WITHIN_S
    for word in words:
        assert word.lower() in r.text.lower(), r.text[:300]
    return True


def no_secrets(text: str, served: Served) -> None:
    assert str(served.root) not in text
    assert str(served.root.parent) not in text


def strict_json(text: str) -> Any:
    """JSON as the standard has it: a bare NaN or Infinity is an error."""

    def bad(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=bad)


SERIES = "/api/series/rt-buoys?station=urn:ioos:station:test:fresh&variable=sea_water_temperature"
WMS = {"service": "WMS", "request": "GetMap", "version": "1.3.0", "format": "image/png"}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"crs": "EPSG:3857", "bbox": "1e308,1e308,-1e308,-1e308"}, "outside"),
        ({"crs": "EPSG:3857", "bbox": "-1e15,-1e15,1e15,1e15"}, "outside"),
        ({"crs": "EPSG:3857", "bbox": "nan,nan,nan,nan"}, "finite"),
        ({"crs": "EPSG:4326", "bbox": "-10,inf,10,20"}, "finite"),
        ({"crs": "CRS:84", "bbox": "20,10,-20,40"}, "inverted"),
        ({"crs": "CRS:84", "bbox": "1,2,3"}, "4 numbers"),
        ({"crs": "CRS:84", "bbox": "-20,10,20,40", "elevation": "abc"}, "elevation"),
        ({"crs": "CRS:84", "bbox": "-20,10,20,40", "time": "now-99999999999days"}, "time"),
        ({"crs": "CRS:84", "bbox": "-20,10,20,40", "width": "20000"}, "width"),
        (
            {"crs": "CRS:84", "bbox": "-20,10,20,40", "layers": "../../outside/ersst:sst"},
            "not valid",
        ),
        ({"crs": "CRS:84", "bbox": "-20,10,20,40", "layers": "ersst:../sst"}, "not a valid name"),
    ],
)
def test_wms_getmap_refused(
    client: httpx.Client, served: Served, params: dict[str, str], words: str
) -> None:
    query = {**WMS, "layers": "ersst:sst", "width": "64", "height": "64", **params}
    r = client.get("/wms", params=query)
    assert refused(r, words)
    no_secrets(r.text, served)


def test_wms_getmap_good_request_still_draws(client: httpx.Client) -> None:
    query = {**WMS, "layers": "ersst:sst", "crs": "CRS:84", "bbox": "-80,20,-40,50"}
    r = client.get("/wms", params={**query, "width": "64", "height": "64"})
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/tiles/ersst/bbox/-1e20,-1e20,1e20,1e20/64x64.png", "outside"),
        ("/tiles/ersst/bbox/nan,0,10,10/64x64.png", "finite"),
        ("/tiles/ersst/bbox/-10,-10,10,10/20000x20000.png", "width"),
        ("/tiles/ersst/bbox/-10,-10,10,10.png?max_size=100000", "max_size"),
        ("/tiles/ersst/bbox/-10,-10,10,10.png?dst_crs=EPSG:32661", "not offered"),
        ("/tiles/ersst/tiles/WebMercatorQuad/99999/0/0.png", "zoom"),
        ("/tiles/ersst/tiles/WebMercatorQuad/3/8/0.png", "does not exist"),
        ("/tiles/ersst/tiles/WebMercatorQuad/2/1/1.png?tilesize=100000", "tilesize"),
        ("/tiles/ersst/point/1e300,0", "outside"),
    ],
)
def test_tile_routes_refused(client: httpx.Client, path: str, words: str) -> None:
    sep = "&" if "?" in path else "?"
    assert refused(client.get(f"{path}{sep}variable=sst"), words)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/tiles/ersst/sst/preview.png?elevation=nan", 400, "elevation"),
        ("/tiles/ersst/sst/preview.png?time=garbage", 400, "not a time"),
        ("/tiles/ersst/sst/preview.png?time=99999-01-01", 400, "time"),
        ("/tiles/ersst/sst/preview.png?colormap_name=nosuch", 400, "colormap"),
        ("/tiles/ersst/tiles/WebMercatorQuad/1/0/0.png?variable=sst&sel=time=garbage", 400, "sel"),
        ("/tiles/ersst/tiles/WebMercatorQuad/1/0/0.png?variable=sst&sel=nodim=3", 400, "sel"),
        ("/tiles/ersst/info?variable=nosuch", 404, "no variable"),
    ],
)
def test_bad_selections_are_client_errors(
    client: httpx.Client, path: str, status: int, words: str
) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text[:300]
    assert refused(r, words)


def test_tile_feature_with_huge_coordinates(client: httpx.Client) -> None:
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[-1e300, -1e300], [1e300, -1e300], [1e300, 1e300], [-1e300, -1e300]]],
        },
    }
    assert refused(client.post("/tiles/ersst/feature.png?variable=sst", json=feature), "outside")


def test_good_tile_still_drawn(client: httpx.Client) -> None:
    r = client.get("/tiles/ersst/tiles/WebMercatorQuad/1/0/0.png?variable=sst")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_sql_result_too_big_is_refused_early(client: httpx.Client) -> None:
    q = "SELECT repeat('x', 1000000) AS a, repeat('y', 1000000) AS b FROM range(1200)"
    # DuckDB checks for an interrupt between vectors of 2,048 rows, and one vector of these
    # is gigabytes of text: the answer comes seconds after the limit, more on a busy machine.
    r = client.get("/sql", params={"q": q, "format": "arrow"}, timeout=90)
    assert r.status_code in (408, 413), r.text[:300]
    assert len(r.content) < 10_000


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM glob('/tmp/coastlake-sql-spill-*/*')",
        "SELECT content FROM read_blob('/tmp/coastlake-sql-spill-*/*')",
        "SELECT * FROM read_text('/tmp/coastlake-sql-spill-*/duckdb_temp_storage*')",
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM '/tmp/coastlake-sql-spill-x/a.csv'",
        "WITH t AS (SELECT * FROM read_blob('/tmp/*')) SELECT count(*) FROM t",
    ],
)
def test_sql_cannot_read_spill_or_settings(client: httpx.Client, query: str) -> None:
    r = client.get("/sql", params={"q": query})
    assert refused(r, "not allowed")
    assert r.status_code == 403


def test_sql_json_with_nan_and_far_dates_is_valid_json(client: httpx.Client) -> None:
    q = (
        "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, DATE '-5000-01-01' AS d, "
        "[1.0, 'nan'::DOUBLE] AS l"
    )
    r = client.get("/sql", params={"q": q})
    assert r.status_code == 200, r.text
    row = strict_json(r.text)["rows"][0]
    assert row["a"] is None and row["b"] is None and row["l"] == [1.0, None]
    assert "5000" in row["d"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/data/stations/rt-buoys.csv?start=now-99999999999days", "start"),
        ("/data/stations/rt-buoys.csv?start=nan", "start"),
        ("/data/stations/rt-buoys.csv?end=-5000-01-01", "end"),
        (
            "/api/series/rt-buoys?station=urn:ioos:station:test:fresh&variable=sea_water_temperature&start=now-99999999999days",
            "start",
        ),
        (
            "/api/series/rt-buoys?station=urn:ioos:station:test:fresh&variable=sea_water_temperature&end=nan",
            "end",
        ),
    ],
)
def test_time_overflow_in_downloads_and_series(client: httpx.Client, path: str, words: str) -> None:
    assert refused(client.get(path), words)


@pytest.mark.parametrize("constraint", ["time>=now-99999999999days", "time>=nan"])
def test_time_overflow_in_tabledap(client: httpx.Client, constraint: str) -> None:
    assert refused(client.get(f"/erddap/tabledap/rt-buoys.csv?station,time&{constraint}"), "time")


def test_healthz_tells_no_paths(client: httpx.Client, served: Served) -> None:
    r = client.get("/healthz")
    assert r.json() == {"status": "ok"}
    no_secrets(r.text, served)


def test_errors_tell_no_paths(client: httpx.Client, served: Served) -> None:
    for path in (
        "/tiles/nosuchgrid/info?variable=x",
        "/wms?"
        + "&".join(
            f"{k}={v}"
            for k, v in {
                **WMS,
                "layers": "nosuchgrid:x",
                "crs": "CRS:84",
                "bbox": "0,0,1,1",
                "width": "8",
                "height": "8",
            }.items()
        ),
    ):
        r = client.get(path)
        assert refused(r)
        no_secrets(r.text, served)


@pytest.mark.parametrize(
    "path",
    [
        "/wms?service=WMS&request=GetCapabilities",
        "/stac/",
        "/tiles/ersst/WebMercatorQuad/tilejson.json?variable=sst",
    ],
)
def test_links_come_from_the_public_url_not_the_host_header(
    client: httpx.Client, path: str
) -> None:
    r = client.get(path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert r.status_code == 200, r.text[:300]
    assert "evil.example" not in r.text
    assert "https://data.example.org/lake" in r.text


def test_metrics_do_not_grow_with_invented_methods_or_paths(client: httpx.Client) -> None:
    for i in range(5):
        client.request(f"BREW{i}", "/sql")
        client.get(f"/made-up-{i}")
    text = client.get("/metrics").text
    assert "BREW" not in text and "made-up" not in text
    assert 'method="other"' in text
