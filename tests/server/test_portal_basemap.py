"""The portal as the demo shows it (recorded data, years old) in headless Chromium: land and
coastline drawn from the bundled Natural Earth data (no tile server, no CDN), an empty
real-time map that says why and offers the historical one, and a draft dataset's station
kept off the public map."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rasterio.io import MemoryFile

from coastlake.harvest import run_harvest
from coastlake.server.app import PORTAL_STATIC, create_app
from lake.registry import load_registry
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import serve

DATA = Path(__file__).resolve().parent.parent / "data" / "server"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LAND = (0xF2, 0xEF, 0xE6)
SEA = (0xDB, 0xE9, 0xF2)
STREAM = """
  - id: {id}
    title: "{title}"
    provider: {{name: NERACOOS}}
    category: regional
    kind: timeseries
    data_stream_plan: "https://neracoos.org/dsp/a01"
    source:
      kind: ndbc
      url: data/www.ndbc.noaa.gov
      file: ocean
      stations:
        - {{id: "44029", name: "Buoy A01", lat: 42.523, lon: -70.566}}
    license: "CC-BY-4.0"
    publication: {publication}
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian chromium (./bootstrap --browser)"
    ),
    pytest.mark.skipif(
        not (PORTAL_STATIC / "land-50m.geojson").exists(), reason="portal not built (./bootstrap)"
    ),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("demo")
    shutil.copytree(DATA / "www.ndbc.noaa.gov", base / "data" / "www.ndbc.noaa.gov")
    registry = "streams:" + STREAM.format(
        id="ndbc-44029-ocean", title="Buoy A01", publication="published"
    )
    registry += STREAM.format(id="a01-draft", title="A01 awaiting review", publication="draft")
    (base / "registry.yaml").write_text(registry)
    settings = Settings(root=str(base / "lake"), registry=str(base / "registry.yaml"))
    storage = Storage.from_settings(settings)
    reg = load_registry(base / "registry.yaml")
    records = run_harvest(storage, reg, reg.streams, progress=False)
    assert {r.stream_id for r in records if r.rows_added} == {"ndbc-44029-ocean", "a01-draft"}
    with serve(create_app(storage, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def page(demo: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        external: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on(
            "request",
            lambda r: (
                external.append(r.url)
                if r.url.startswith(("http:", "https:")) and not r.url.startswith(demo)
                else None
            ),
        )
        page.goto(demo + "/")
        page.wait_for_function("window.coastlake && window.coastlake.ready", timeout=30_000)
        page.errors, page.external = errors, external  # type: ignore[attr-defined]
        yield page
        browser.close()


def pixel(page: Any, image: np.ndarray, lon: float, lat: float) -> tuple[int, ...]:
    x, y = page.evaluate(
        """([lon, lat]) => {
            const m = window.coastlake.map, p = m.project([lon, lat]);
            const r = m.getContainer().getBoundingClientRect();
            return [Math.round(r.left + p.x), Math.round(r.top + p.y)];
        }""",
        [lon, lat],
    )
    return tuple(int(v) for v in image[y, x])


def screenshot(page: Any, name: str) -> np.ndarray:
    SHOTS.mkdir(parents=True, exist_ok=True)
    data = page.screenshot(path=str(SHOTS / f"{name}.png"))
    with MemoryFile(data) as mem, mem.open() as png:
        return np.moveaxis(png.read()[:3], 0, -1)


def test_empty_realtime_map_says_why_and_offers_history(page: Any, demo: str) -> None:
    notice = page.locator("#empty-notice")
    assert notice.is_visible()
    assert "2022" in notice.inner_text() and "real-time map is empty" in notice.inner_text()
    screenshot(page, "portal-empty-realtime")
    page.click("#show-historical")
    page.wait_for_timeout(500)
    assert not notice.is_visible()
    stations = page.evaluate(
        "() => window.coastlake.map.queryRenderedFeatures({layers: ['stations']})"
        ".map(f => f.properties.dataset_id)"
    )
    assert stations and set(stations) == {"ndbc-44029-ocean"}  # the draft is not on the map
    api = httpx.get(demo + "/api/stations").json()["features"]
    assert {f["properties"]["dataset_id"] for f in api} == {"ndbc-44029-ocean"}
    assert page.errors == [] and page.external == []


def test_land_and_coastline_from_the_bundle(page: Any) -> None:
    page.evaluate("() => window.coastlake.map.jumpTo({center: [-70.5, 42.3], zoom: 7})")
    page.wait_for_function(
        "() => window.coastlake.map.loaded() && window.coastlake.map.areTilesLoaded()"
    )
    page.wait_for_timeout(300)
    coast = page.evaluate(
        "() => window.coastlake.map.queryRenderedFeatures({layers: ['coastline']}).length"
    )
    assert coast > 0
    image = screenshot(page, "portal-coastline")
    assert pixel(page, image, -71.6, 42.3) == LAND  # inland Massachusetts
    assert pixel(page, image, -69.6, 42.1) == SEA  # Gulf of Maine, away from stations
