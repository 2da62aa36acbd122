"""pystac-client against the running STAC API (uvicorn on 127.0.0.1), checked against the
lake, and the review rule: a draft is out of search until approved."""

from __future__ import annotations

import time
from typing import Any

import httpx
from pystac import ItemCollection
from pystac_client import Client
from pystac_client.item_search import ItemSearch

from lake.reader import Lake
from stac import publish
from tests.stac.conftest import DRAFT, EXTERNAL, GRID, LAYER, SampleLake


def _ids(search: ItemSearch) -> set[tuple[str, str]]:
    return {(i.collection_id or "", i.id) for i in search.items()}


def test_landing_conformance_collections(stac_server: str) -> None:
    client = Client.open(stac_server + "/")
    assert client.conforms_to("ITEM_SEARCH") and client.conforms_to("FILTER")
    conformance = httpx.get(stac_server + "/conformance").json()["conformsTo"]
    assert any("free-text" in c for c in conformance)
    ids = {c.id for c in client.get_collections()}
    assert ids == {"ndbc-44013-stdmet", "ndbc-44029-ocean", EXTERNAL, GRID, LAYER}
    queryables = httpx.get(stac_server + "/queryables").json()["properties"]
    assert "cf:standard_name" in queryables
    # Mounted at /stac: every link a client follows stays under the mount.
    item = next(client.search(collections=["ndbc-44013-stdmet"]).items())
    assert item.get_self_href() == f"{stac_server}/collections/ndbc-44013-stdmet/items/wmo-44013"


def test_search_by_bbox_matches_station_positions(
    stac_server: str, sample_lake: SampleLake
) -> None:
    lk = Lake(sample_lake.storage)
    inside = lk.sql(
        "SELECT dataset_id, station_id FROM stations "
        "WHERE lon BETWEEN -70.6 AND -70.5 AND lat BETWEEN 42.5 AND 42.6"
    ).to_pylist()
    lk.close()
    assert {r["dataset_id"] for r in inside} == {"ndbc-44029-ocean", DRAFT}
    client = Client.open(stac_server + "/")
    found = _ids(client.search(bbox=[-70.6, 42.5, -70.5, 42.6]))
    # the draft copy of A01 is not public; the global SST grid covers every box
    assert found == {("ndbc-44029-ocean", "wmo-44029"), (GRID, GRID)}
    assert _ids(client.search(bbox=[-10, 40, 0, 50])) == {(GRID, GRID)}
    assert _ids(client.search(bbox=[-125, 35, -120, 40])) == {(GRID, GRID), (LAYER, LAYER)}


def test_search_by_time_uses_observation_extents(stac_server: str, sample_lake: SampleLake) -> None:
    lk = Lake(sample_lake.storage)
    (row,) = lk.sql(
        "SELECT min(time) t0, max(time) t1 FROM observations_all "
        "WHERE dataset_id = 'ndbc-44013-stdmet'"
    ).to_pylist()
    lk.close()
    client = Client.open(stac_server + "/")
    during = client.search(datetime=f"{row['t0'].isoformat()}Z/{row['t1'].isoformat()}Z")
    assert ("ndbc-44013-stdmet", "wmo-44013") in _ids(during)
    after = f"{row['t1'].replace(year=row['t1'].year + 1).isoformat()}Z/.."
    assert _ids(client.search(datetime=after, collections=["ndbc-44013-stdmet"])) == set()


def test_search_by_cf_standard_name_filter(stac_server: str, sample_lake: SampleLake) -> None:
    lk = Lake(sample_lake.storage)
    having = {
        r["dataset_id"]
        for r in lk.sql(
            "SELECT DISTINCT dataset_id FROM observations_all "
            "WHERE variable = 'sea_water_practical_salinity'"
        ).to_pylist()
    }
    lk.close()
    client = Client.open(stac_server + "/")
    cql_json = {
        "op": "a_contains",
        "args": [{"property": "cf:standard_name"}, ["sea_water_practical_salinity"]],
    }
    found = _ids(client.search(filter=cql_json))
    assert {c for c, _ in found} == having - {DRAFT}
    text = client.search(filter="cf:standard_name = 'wind_speed'", method="GET")
    assert _ids(text) == {("ndbc-44013-stdmet", "wmo-44013")}
    # a property no item has is NULL (queryables allow other properties), so nothing matches
    missing = httpx.post(
        stac_server + "/search",
        json={"filter": {"op": "=", "args": [{"property": "nope"}, 1]}},
    )
    assert missing.status_code == 200 and missing.json()["features"] == []
    bad = httpx.post(stac_server + "/search", json={"filter": {"op": "nope", "args": []}})
    assert bad.status_code == 400 and "nope" in bad.text


def _text(url: str, q: str, method: str) -> set[tuple[str, str]]:
    """Free text: pystac-client 0.9.1's search() has no `q`, so ask the API directly and
    read the answer with pystac."""
    if method == "GET":
        body = httpx.get(url + "/search", params={"q": q}).json()
    else:
        body = httpx.post(url + "/search", json={"q": [q]}).json()
    return {(i.collection_id or "", i.id) for i in ItemCollection.from_dict(body)}


def test_free_text_search(stac_server: str) -> None:
    assert _text(stac_server, "salinity", "GET") == {("ndbc-44029-ocean", "wmo-44029")}
    assert _text(stac_server, "Boston", "POST") == {("ndbc-44013-stdmet", "wmo-44013")}
    assert _text(stac_server, "zooplankton", "GET") == set()


def test_pagination_walks_every_item(stac_server: str) -> None:
    client = Client.open(stac_server + "/")
    assert len(list(client.search(limit=1).items())) == 4  # 2 stations, 1 grid, 1 layer
    assert _ids(client.search(ids=["wmo-44029"])) == {("ndbc-44029-ocean", "wmo-44029")}


def test_one_search_finds_station_series_and_grids(stac_server: str) -> None:
    """Harmonized discovery: SST near Boston is the buoy and the global grid alike."""
    client = Client.open(stac_server + "/")
    sst = {"op": "=", "args": [{"property": "cf:standard_name"}, "sea_surface_temperature"]}
    found = _ids(client.search(bbox=[-71.0, 42.0, -70.0, 43.0], filter=sst))
    assert found == {("ndbc-44013-stdmet", "wmo-44013"), (GRID, GRID)}
    items = {i.collection_id: i for i in client.search(bbox=[-71, 42, -70, 43], filter=sst).items()}
    assert items[GRID].assets["opendap"].href.endswith(f"/grids/datasets/{GRID}/opendap")
    # the Delta table of a lake in a local folder is no address for a client; CSV is
    assert items["ndbc-44013-stdmet"].assets["csv"].media_type == "text/csv"


def test_draft_hidden_until_approved(stac_server: str, sample_lake: SampleLake) -> None:
    client = Client.open(stac_server + "/")
    assert DRAFT not in {c.id for c in client.get_collections()}
    assert _ids(client.search(collections=[DRAFT])) == set()
    # Reachable by id for its provider's review.
    assert httpx.get(f"{stac_server}/collections/{DRAFT}").status_code == 200
    item = httpx.get(f"{stac_server}/collections/{DRAFT}/items/wmo-44029")
    assert item.status_code == 200 and item.json()["collection"] == DRAFT

    kw: dict[str, Any] = {"storage": sample_lake.storage, "registry": sample_lake.registry}
    publish.request_review(DRAFT, "data manager", "metadata complete", **kw)
    publish.approve(DRAFT, "NERACOOS", "looks right", **kw)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _ids(client.search(collections=[DRAFT])):
                break
            time.sleep(0.3)
        assert _ids(client.search(collections=[DRAFT])) == {(DRAFT, "wmo-44029")}
        assert DRAFT in {c.id for c in client.get_collections()}
    finally:
        publish.reject(DRAFT, "NERACOOS", "back to draft for the other tests", **kw)
