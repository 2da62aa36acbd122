"""Data Stream Plans generated from the registry and a real lake: the QC tests and
thresholds in force after every override, what is kept, what was archived; served as HTML
and Markdown, and linked from the STAC collection and the dataset page."""

from __future__ import annotations

import json
from datetime import datetime

import httpx

from coastlake.server import plans, portal
from coastlake.server.app import create_app
from lake.reader import Lake
from lake.registry import Registry
from steward.stream_plans import stream_plan, streams_needing_plans, to_html, to_markdown
from tests.grids.support import serve

NOW = datetime(2026, 12, 3, 12, 0)


def test_plan_states_the_thresholds_in_force_and_what_is_kept(
    sample_lake: tuple[Lake, Registry],
) -> None:
    lk, registry = sample_lake
    assert [s.id for s in streams_needing_plans(registry)] == ["ndbc-44029-ocean"]
    doc = to_markdown(stream_plan(lk, registry, registry.get("ndbc-44029-ocean"), NOW))
    # The registry's stream override of the gross range and its station's flat-line tolerance.
    assert (
        "| sea_water_temperature | urn:ioos:station:wmo:44029 | gross_range | "
        '{"fail_span": [-5.0, 40.0], "suspect_span": [-1.5, 26.0]} |' in doc
    )
    assert '"tolerance": 0.001' in doc
    assert "Category: regional; QC path: full QARTOD suite" in doc
    stored = lk.sql(
        "select count(*) n from observations_all where dataset_id = 'ndbc-44029-ocean'"
    ).to_pylist()[0]["n"]
    assert f"Held now: {stored:,} values at 1 stations" in doc
    assert "Not sent to NCEI" in doc and "Provider's own plan: https://neracoos.org/dsp/a01" in doc
    page = to_html(stream_plan(lk, registry, registry.get("ndbc-44029-ocean"), NOW))
    assert "<h2>Quality control</h2>" in page and "<td>gross_range</td>" in page


def test_plans_are_served_and_linked(sample_lake: tuple[Lake, Registry]) -> None:
    lk, _ = sample_lake
    app = create_app(lk.storage, lk.storage.settings, parts=(plans.install, portal.install))
    with serve(app) as base:
        page = httpx.get(f"{base}/plans/ndbc-44029-ocean.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Data Stream Plan: NERACOOS Buoy A01" in page.text
        text = httpx.get(f"{base}/plans/ndbc-44029-ocean.md")
        assert text.text.startswith("# Data Stream Plan") and "| test |" in text.text
        assert httpx.get(f"{base}/plans/no-such-stream.html").status_code == 404
        assert httpx.get(f"{base}/plans/ndbc-44029-ocean.pdf").status_code == 400
        details = httpx.get(f"{base}/api/datasets/ndbc-44029-ocean").json()
        assert details["provider_plan"] == "https://neracoos.org/dsp/a01"
    # The STAC collection the harvest built links the generated plan.
    collection = json.loads(
        lk.storage.read_bytes(lk.storage.url("catalog", "ndbc-44029-ocean", "collection.json"))
    )
    hrefs = [link["href"] for link in collection["links"] if link["rel"] == "describedby"]
    assert "https://neracoos.org/dsp/a01" in hrefs
    assert any(h.endswith("/plans/ndbc-44029-ocean.html") for h in hrefs)
