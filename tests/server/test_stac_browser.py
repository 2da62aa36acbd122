"""STAC Browser (Radiant Earth 4.0.1, built from npm into the portal) at /stac-browser/,
pointed at this server's STAC API by the config the server writes: the root, a collection
and an item render in headless Chromium, and the portal links to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coastlake.server.portal import STAC_BROWSER
from tests.server.conftest import RunningServer

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian chromium (./bootstrap --browser)"
    ),
    pytest.mark.skipif(
        not (STAC_BROWSER / "index.html").exists(), reason="STAC Browser not built (./bootstrap)"
    ),
]


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def test_config_points_at_this_servers_stac_api(server: RunningServer) -> None:
    config = httpx.get(f"{server.url}/stac-browser/config.js").text
    assert f'"catalogUrl": "{server.url}/stac/"' in config
    assert httpx.get(f"{server.url}/stac-browser/").status_code == 200
    portal = httpx.get(f"{server.url}/static/index.html").text
    assert 'href="/stac-browser/"' in portal


def test_collection_and_item_pages_render(page: Any, server: RunningServer) -> None:
    base = f"{server.url}/stac-browser/#"
    page.goto(f"{base}/")
    page.wait_for_selector("h1:has-text('coastlake STAC API')", timeout=30_000)
    page.goto(f"{base}/collections/ndbc-44029-ocean")
    page.wait_for_selector("h1:has-text('NERACOOS Buoy A01')", timeout=30_000)
    page.goto(f"{base}/collections/ndbc-44029-ocean/items/wmo-44029")
    heading = page.wait_for_selector("h1:has-text('(NERACOOS Buoy A01')", timeout=30_000)
    assert heading is not None
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(SHOTS / "stac-browser-item.png"))
    page.wait_for_selector("text=ERDDAP-style tabledap CSV", timeout=60_000)
