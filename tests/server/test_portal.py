"""The portal in headless Chromium (Debian's, driven by Playwright): no console errors, stations
in the right states and colours, the historical map, a dataset page with its plot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.io import MemoryFile

from coastlake.server.app import PORTAL_STATIC
from tests.server.conftest import RT_STATIONS, RunningServer

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "screenshots"
GREY = (0x9E, 0x9E, 0x9E)
HISTORICAL = (0x0B, 0x6E, 0x99)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian chromium (./bootstrap --browser)"
    ),
    pytest.mark.skipif(
        not (PORTAL_STATIC / "index.html").exists(), reason="portal not built (./bootstrap)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: RunningServer) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.errors = errors
    page.goto(server.url + "/")
    page.wait_for_function("window.coastlake && window.coastlake.ready", timeout=30_000)
    yield page
    page.close()


def shot(page: Any, name: str) -> np.ndarray:
    """Save a screenshot for CI's artifacts; returns its pixels as (height, width, rgb)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    data = page.screenshot(path=str(SHOTS / f"{name}.png"))
    with MemoryFile(data) as mem, mem.open() as png:
        return np.moveaxis(png.read()[:3], 0, -1)


def pixel_at_station(page: Any, image: np.ndarray, station_key: str) -> tuple[int, int, int]:
    _sid, lon, lat, _age = RT_STATIONS[station_key]
    x, y = page.evaluate(
        """([lon, lat]) => {
            const m = window.coastlake.map, p = m.project([lon, lat]);
            const r = m.getContainer().getBoundingClientRect();
            return [Math.round(r.left + p.x), Math.round(r.top + p.y)];
        }""",
        [lon, lat],
    )
    return tuple(int(v) for v in image[y, x])  # type: ignore[return-value]


def close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 12) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def hex_rgb(value: str) -> tuple[int, int, int]:
    return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def rendered(page: Any) -> dict[str, dict[str, str]]:
    return page.evaluate(
        """() => Object.fromEntries(window.coastlake.map
            .queryRenderedFeatures({layers: ['stations']})
            .map(f => [f.properties.station_id,
                       {state: f.properties.state, color: f.properties.color}]))"""
    )


def test_realtime_map_states_and_colours(page: Any) -> None:
    stations = rendered(page)
    fresh, stale, offline = (RT_STATIONS[k][0] for k in ("fresh", "stale", "offline"))
    assert stations[fresh]["state"] == "active"
    assert stations[stale] == {"state": "stale", "color": "#9e9e9e"}
    assert offline not in stations, "a station silent for 2 weeks must leave the real-time map"
    assert "urn:ioos:station:wmo:44029" not in stations
    image = shot(page, "portal-realtime")
    assert close(pixel_at_station(page, image, "stale"), GREY)
    fresh_px = pixel_at_station(page, image, "fresh")
    assert close(fresh_px, hex_rgb(stations[fresh]["color"]))
    assert not close(fresh_px, GREY)
    assert page.errors == []


def test_historical_map_shows_every_station(page: Any) -> None:
    page.click("#mode-historical")
    page.wait_for_function(
        "document.querySelectorAll('#station-list li').length === 4", timeout=10_000
    )
    page.evaluate(
        "new Promise(r => { const m = window.coastlake.map;"
        " m.once('idle', r); m.triggerRepaint(); })"
    )
    image = shot(page, "portal-historical")
    assert close(pixel_at_station(page, image, "offline"), HISTORICAL)
    states = page.eval_on_selector_all("#station-list li", "els => els.map(e => e.dataset.state)")
    assert sorted(states) == ["active", "offline", "offline", "stale"]
    assert page.errors == []


def test_dataset_page_draws_plot_with_flagged_values(page: Any) -> None:
    page.fill("#search", "realtime")
    page.wait_for_selector("#dataset-list li[data-dataset='rt-buoys']")
    page.click("#station-list li[data-state='active']")
    page.wait_for_selector("#plot canvas", timeout=15_000)
    assert page.get_attribute("#plot", "data-points") == "24"
    assert page.get_attribute("#plot", "data-flagged") == "1"
    body = page.inner_text("#dataset-body")
    assert "Test Ocean Observing (2026): real-time buoys." in body
    assert "CC-BY-4.0" in body and "fail" in body
    links = page.eval_on_selector_all("#downloads a", "els => els.map(e => e.textContent)")
    assert links[:4] == ["NC", "CSV", "JSON", "PARQUET"]
    canvas_has_ink = page.evaluate(
        """() => { const c = document.querySelector('#plot canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert canvas_has_ink > 500
    shot(page, "portal-dataset")
    assert page.errors == []


def test_grid_layer_with_time_slider(page: Any) -> None:
    page.wait_for_selector("#grid-panel:not([hidden])", timeout=10_000)
    page.select_option("#grid-layer", index=1)
    page.wait_for_function(
        "window.coastlake.map.getSource('grid') && window.coastlake.map.isSourceLoaded('grid')",
        timeout=30_000,
    )
    assert page.inner_text("#grid-time-label").startswith("2016-06")
    shot(page, "portal-grid")
    assert page.errors == []


def test_gis_layer_overlay(page: Any) -> None:
    page.wait_for_selector("#layer-panel:not([hidden])", timeout=10_000)
    page.check("input[data-layer='ca-state']")
    page.wait_for_function(
        "window.coastlake.map.getLayer('layer-ca-state-fill') &&"
        " window.coastlake.map.isSourceLoaded('layer-ca-state')",
        timeout=30_000,
    )
    page.evaluate(
        "new Promise(r => { const m = window.coastlake.map;"
        " m.once('idle', r); m.triggerRepaint(); })"
    )
    drawn = page.evaluate(
        "window.coastlake.map.queryRenderedFeatures({layers: ['layer-ca-state-fill']}).length"
    )
    assert drawn >= 1
    shot(page, "portal-gis-layer")
    assert page.errors == []
