"""The upload route over real HTTP (uvicorn on 127.0.0.1): the admin token or a provider's
own token; a file lands like a harvest; a bad file is a 422 naming file and fault with the
lake's values unchanged; wrong tokens, other providers' streams, oversize bodies refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coastlake.server import contributions, portal
from coastlake.server.app import create_app
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
from tests.grids.support import serve
from tests.ingest.support import INGEST_DATA, NDBC, rows

LATEST = NDBC / "data/latest_obs/latest_obs.txt"
TAO_NC = INGEST_DATA / "pmelTao5dayIso_ISO_6_10N265E.ncCF.nc"
ADMIN, GTMBA_TOKEN = "admin-secret", "gtmba-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Storage]]:
    settings = Settings(
        root=str(tmp_path / "lake"),
        registry=str(SAMPLE_REGISTRY),
        admin_token=ADMIN,
        provider_tokens={"NOAA PMEL GTMBA Project Office": GTMBA_TOKEN},
        upload_max_bytes=2 * 2**20,
    )
    storage = Storage.from_settings(settings)
    app = create_app(storage, settings, parts=(contributions.install, portal.install))
    with serve(app) as base:
        yield base, storage


def post(base: str, stream: str, body: bytes, token: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{base}/contribute/{stream}", content=body, headers=headers, params=params, timeout=120
    )


def test_provider_token_uploads_netcdf_to_its_own_stream(server) -> None:  # type: ignore[no-untyped-def]
    base, storage = server
    reply = post(base, "erddap-tao-10n95w-iso", TAO_NC.read_bytes(), GTMBA_TOKEN, filename="tao.nc")
    assert reply.status_code == 201, reply.text
    assert reply.json() | {"raw_id": None} == {
        "stream": "erddap-tao-10n95w-iso",
        "file": "tao.nc",
        "provider": "NOAA PMEL GTMBA Project Office",
        "status": "ok",
        "values_read": 276,
        "values_new": 276,
        "raw_id": None,
    }
    assert len(rows(storage)) == 276
    # The dataset page says where the values came from and how they rank.
    page = httpx.get(f"{base}/api/datasets/erddap-tao-10n95w-iso", timeout=60).json()
    assert page["source_priority"] == {"upload": 1}  # ERDDAP values carry no product
    assert page["sources"] == [
        {
            "source": "upload",
            "rank": 1,
            "values": 276,
            "first": "1999-12-02T12:00:00Z",
            "last": "2003-10-28T12:00:00Z",
        }
    ]
    # the same token may not upload to NDBC's stream
    other = post(base, "ndbc-latest-obs", LATEST.read_bytes(), GTMBA_TOKEN, filename="x.txt")
    assert other.status_code == 403 and "cannot upload to 'ndbc-latest-obs'" in other.text


def test_admin_upload_and_a_bad_file_refused(server) -> None:  # type: ignore[no-untyped-def]
    base, storage = server
    ok = post(base, "ndbc-latest-obs", LATEST.read_bytes(), ADMIN, filename="latest.txt",
              provider="NDBC data desk")  # fmt: skip
    assert ok.status_code == 201, ok.text
    assert ok.json()["provider"] == "NDBC data desk" and ok.json()["values_new"] > 100
    before = rows(storage)
    cut = post(base, "ndbc-latest-obs", LATEST.read_bytes()[:5000], ADMIN, filename="cut.txt")
    assert cut.status_code == 422
    detail = cut.text
    assert "cut.txt refused (syntax_failed)" in detail and "truncated" in detail
    assert rows(storage) == before


def test_refusals_before_reading(server) -> None:  # type: ignore[no-untyped-def]
    base, storage = server
    body = LATEST.read_bytes()
    assert post(base, "ndbc-latest-obs", body, None, filename="a.txt").status_code == 401
    assert post(base, "ndbc-latest-obs", body, "wrong", filename="a.txt").status_code == 403
    assert post(base, "no-such-stream", body, ADMIN, filename="a.txt").status_code == 404
    bad_name = post(base, "ndbc-latest-obs", body, ADMIN, filename="../../etc/passwd")
    assert bad_name.status_code == 400 and "not a plain file name" in bad_name.text
    big = post(base, "ndbc-latest-obs", b"x" * (2 * 2**20 + 1), ADMIN, filename="big.txt")
    assert big.status_code == 413
    empty = post(base, "ndbc-latest-obs", b"", ADMIN, filename="empty.txt")
    assert empty.status_code == 422 and "empty.txt" in empty.text
    grid = post(base, "erddap-mw-sst-1day", TAO_NC.read_bytes(), ADMIN, filename="g.nc")
    assert grid.status_code == 400 and "contributions go to streams of observations" in grid.text
    assert rows(storage) == []
