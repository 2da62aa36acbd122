"""Hostile input, each refused with a 4xx and a clear message, and the lake unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN, RunningServer


def snapshot(root: Path) -> list[tuple[str, int]]:
    """Every file of the lake with its size: any write would change this."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out.append((str(path.relative_to(root)), path.stat().st_size))
    return sorted(out)


@pytest.fixture
def unchanged(server: RunningServer) -> Iterator[None]:
    """Fails the test if the lake's files changed during it."""
    root = Path(server.lake.settings.root)
    before = snapshot(root)
    yield
    assert snapshot(root) == before, "the lake changed"


def assert_refused(r: httpx.Response, status: int | tuple[int, ...], words: str) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    assert 400 <= r.status_code < 500
    assert words.lower() in r.text.lower(), r.text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("DELETE FROM observations_all", "only SELECT"),
        ("INSERT INTO observations_all SELECT * FROM observations_all", "only SELECT"),
        ("CREATE TABLE t AS SELECT 1", "only SELECT"),
        ("UPDATE stations SET name = 'x'", "only SELECT"),
        ("COPY (SELECT 1) TO '/tmp/coastlake-pwned.csv'", "only SELECT"),
        ("SELECT 1; DROP VIEW observations", "exactly one statement"),
    ],
)
def test_sql_that_writes(client: httpx.Client, unchanged: None, query: str, words: str) -> None:
    assert_refused(client.get("/sql", params={"q": query}), (400, 403), words)
    assert not Path("/tmp/coastlake-pwned.csv").exists()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/*')",
    ],
)
def test_sql_that_reads_files(client: httpx.Client, unchanged: None, query: str) -> None:
    r = client.get("/sql", params={"q": query})
    assert_refused(r, (400, 403), "")
    assert "root:" not in r.text and "error" in r.json()


def test_sql_cannot_delta_scan_the_lake_or_raw_files(
    client: httpx.Client, server: RunningServer, unchanged: None
) -> None:
    url = server.lake.storage.url("tables", "observations")
    r = client.get("/sql", params={"q": f"SELECT count(*) FROM delta_scan('{url}')"})
    assert_refused(r, (400, 403), "")
    assert r.status_code in (400, 403)


def test_sql_that_attaches(client: httpx.Client, unchanged: None) -> None:
    r = client.get("/sql", params={"q": "ATTACH '/tmp/evil.duckdb' AS evil"})
    assert_refused(r, 403, "only SELECT")
    r = client.post("/sql", json={"query": "SELECT * FROM duckdb_databases() WHERE NOT internal"})
    assert r.status_code == 200
    assert [d["database_name"] for d in r.json()["rows"]] == ["memory"]


@pytest.mark.parametrize(
    "query",
    ["INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true", "SET threads = 64"],
)
def test_sql_that_installs_loads_or_reconfigures(
    client: httpx.Client, unchanged: None, query: str
) -> None:
    assert_refused(client.get("/sql", params={"q": query}), 403, "only SELECT")


def test_sql_that_runs_forever_is_interrupted(client: httpx.Client, unchanged: None) -> None:
    q = "SELECT count(*) FROM range(1000000000000) a, range(1000) b"
    r = client.get("/sql", params={"q": q})
    assert_refused(r, 408, "time limit")
    assert client.get("/sql", params={"q": "SELECT 42 AS x"}).json()["rows"] == [{"x": 42}]


@pytest.mark.parametrize("limit", ["100000000000", "-1", "0", "lots"])
def test_sql_huge_or_bad_limits(client: httpx.Client, unchanged: None, limit: str) -> None:
    r = client.get("/sql", params={"q": "SELECT 1", "limit": limit})
    assert_refused(r, 400, "limit")


def test_tabledap_huge_order_limit(client: httpx.Client, unchanged: None) -> None:
    r = client.get('/erddap/tabledap/rt-buoys.csv?station,time&orderByLimit("station,999999999")')
    assert_refused(r, 400, "orderByLimit count")


@pytest.mark.parametrize(
    "path",
    [
        "/erddap/tabledap/%2E%2E.csv",
        "/erddap/tabledap/..%2F..%2Fetc%2Fpasswd.csv",
        "/erddap/info/%2E%2E/index.csv",
        "/data/stations/%2E%2E.csv",
        "/data/raw/ndbc-44029-ocean/..%2F..%2F..%2Fetc%2Fpasswd",
        "/data/stations/ndbc-44029-ocean.csv?station=..%2F..%2Fetc",
        "/api/datasets/..%5C..%5Cwindows",
    ],
)
def test_path_traversal_in_ids(client: httpx.Client, unchanged: None, path: str) -> None:
    r = client.get(path)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert "root:" not in r.text
    assert "not valid" in r.text or "no such page" in r.text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("station,time&time>=yesterday-ish", "is not a time"),
        ("station,time&sea_water_temperature>warm", "not a number"),
        ("station,time&nonsense_var>3", "has no variable"),
        ("station,time&time", "not understood"),
        ('station,time&station=~"[unclosed"', "regular expression"),
        ('station,time&orderBy("z")', "must also be in the list"),
        ("station,time&dropTables()", "not supported"),
        ("station;DROP TABLE x,time", "has no variable"),
        ('station,time&station="x\' OR 1=1 --"', "no matching results"),
    ],
)
def test_malformed_constraints(
    client: httpx.Client, unchanged: None, query: str, words: str
) -> None:
    r = client.get(f"/erddap/tabledap/rt-buoys.csv?{query}")
    assert_refused(r, (400, 404), words)


def test_unknown_format(client: httpx.Client) -> None:
    assert_refused(client.get("/erddap/tabledap/rt-buoys.exe"), 400, "not supported")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/admin/harvest/ndbc-44029-ocean", {}),
        ("/admin/harvest/ndbc-44029-ocean", {"Authorization": "Bearer wrong-token"}),
        ("/admin/harvest/ndbc-44029-ocean", {"Authorization": f"Basic {ADMIN_TOKEN}"}),
        ("/admin/publish/rt-buoys/approve", {}),
    ],
)
def test_writes_without_the_token(
    client: httpx.Client, unchanged: None, path: str, headers: dict[str, str]
) -> None:
    r = client.post(path, headers=headers)
    assert_refused(r, (401, 403), "token")


def test_public_routes_do_not_accept_writes(client: httpx.Client, unchanged: None) -> None:
    for path in ("/erddap/tabledap/rt-buoys.csv", "/data/stations/rt-buoys.csv", "/api/stations"):
        r = client.delete(path)
        assert r.status_code == 405, (path, r.status_code)
