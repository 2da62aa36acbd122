"""The STAC API as validators and clients see it: stac-api-validator with no errors for
every conformance class the landing page advertises, every item and collection of the API
and of the static catalog valid against the core and each extension schema it declares
(schemas vendored in tests/data/stac/schemas, so this runs offline), and the search
behaviours the validator checks loosely (intersects, bbox rules, CQL2-text, bad filters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pystac
import pytest
import stac_validator.utilities as stac_schemas
import xarray as xr
from pystac.validation import JsonSchemaSTACValidator, RegisteredValidator
from stac_api_validator.validations import QueryConfig, validate_api
from stac_validator.validate import StacValidate

from lake.grids import GridStore
from stac.validate import schema_map
from tests.stac.conftest import GRID, LAYER, SampleLake

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "stac" / "schemas"
MAP = schema_map(SCHEMAS)
A01 = {
    "type": "Polygon",
    "coordinates": [[[-70.6, 42.5], [-70.5, 42.5], [-70.5, 42.6], [-70.6, 42.5]]],
}

BOSTON = {
    "type": "Polygon",
    "coordinates": [[[-71, 42], [-70, 42], [-70, 43], [-71, 43], [-71, 42]]],
}

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def offline_schemas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stac-validator reads every schema through one cached loader: point it at the files."""
    load = stac_schemas.fetch_and_parse_file
    monkeypatch.setattr(stac_schemas, "_schema_cache", lambda path: load(MAP.get(path, path)))
    yield


def _valid(obj: dict[str, Any]) -> tuple[bool, str]:
    validator = StacValidate(schema_map=MAP, verbose=True)
    ok = validator.validate_dict(obj)
    return bool(ok), json.dumps(validator.message)[:800]


def test_stac_api_validator_finds_no_errors(stac_server: str, offline_schemas: None) -> None:
    landing = httpx.get(stac_server + "/").json()
    advertised = " ".join(landing["conformsTo"])
    classes = ["core", "collections", "features", "item-search"]
    if "filter" in advertised:
        classes.append("filter")
    _warnings, errors = validate_api(
        root_url=stac_server + "/",
        ccs_to_validate=classes,
        collection="ndbc-44013-stdmet",
        geometry=json.dumps(BOSTON),
        auth_bearer_token=None,
        auth_query_parameter=None,
        fields_nested_property=None,
        validate_pagination=False,  # one item per collection here; test_api walks pages
        query_config=QueryConfig(*([None] * 13)),
        transaction_collection=None,
        headers=None,
    )
    assert not list(errors), "\n".join(str(e) for e in errors)


def test_every_api_item_and_collection_validates_with_its_extensions(
    stac_server: str, offline_schemas: None
) -> None:
    collections = httpx.get(stac_server + "/collections").json()["collections"]
    items = httpx.get(stac_server + "/search", params={"limit": 100}).json()["features"]
    assert len(collections) == 5 and len(items) == 4
    for obj in [*collections, *items]:
        ok, message = _valid(obj)
        assert ok, (obj["id"], message)
        declared = obj.get("stac_extensions", [])
        assert all(url in MAP for url in declared), declared  # every schema really checked
        assert "null" not in json.dumps(obj["assets"]), obj["id"]
    grid = next(i for i in items if i["id"] == GRID)
    assert any("cf:parameter" in a for a in grid["assets"].values())


@pytest.fixture
def offline_pystac(monkeypatch: pytest.MonkeyPatch) -> None:
    """pystac's own validator, its schema cache filled from the same files (no network)."""
    validator = JsonSchemaSTACValidator()
    for uri, path in MAP.items():
        validator.schema_cache[uri] = json.loads(Path(path).read_text())
    monkeypatch.setattr(RegisteredValidator, "_validator", validator)


def test_pystac_validates_api_and_static_catalog(
    stac_server: str, sample_lake: SampleLake, offline_pystac: None
) -> None:
    collections = httpx.get(stac_server + "/collections").json()["collections"]
    items = httpx.get(stac_server + "/search", params={"limit": 100}).json()["features"]
    checked = [pystac.Collection.from_dict(c).validate() for c in collections]
    checked += [pystac.Item.from_dict(i).validate() for i in items]
    catalog = pystac.Catalog.from_file(str(sample_lake.root / "catalog" / "catalog.json"))
    assert catalog.validate_all() > 0
    schemas = {uri for uris in checked for uri in uris}
    assert any("cf/v0.2.0" in u for u in schemas) and any("datacube" in u for u in schemas)


def test_static_catalog_validates_with_its_extensions(
    sample_lake: SampleLake, offline_schemas: None
) -> None:
    files = sorted((sample_lake.root / "catalog").rglob("*.json"))
    assert len(files) > 5
    for path in files:
        obj = json.loads(path.read_text())
        if obj.get("type") not in ("Feature", "Collection"):
            continue
        ok, message = _valid(obj)
        assert ok, (str(path), message)


def test_asset_hrefs_are_addresses_a_client_can_follow(stac_server: str) -> None:
    """The catalog was built with LAKE_PUBLIC_URL unset (its default, port 8000) and a lake
    in a local folder: the API answers with this server's address and no server paths."""
    base = stac_server.removesuffix("/stac")
    items = httpx.get(stac_server + "/search", params={"limit": 100}).json()["features"]
    hrefs = [a["href"] for i in items for a in i["assets"].values()]
    assert hrefs and all(h.startswith(base + "/") for h in hrefs), hrefs
    assert f"{base}/grids/datasets/{GRID}/opendap" in hrefs


def test_xarray_hints_open_the_grid_as_written(stac_server: str, sample_lake: SampleLake) -> None:
    item = httpx.get(f"{stac_server}/collections/{GRID}/items/{GRID}").json()
    opendap = item["assets"]["opendap"]
    ds = xr.open_dataset(opendap["href"], **opendap["xarray:open_kwargs"])
    want = GridStore(sample_lake.storage, GRID).open()
    np.testing.assert_array_equal(ds.sst.values, want.sst.values)


def test_intersects_is_exact_and_bbox_rules_are_enforced(stac_server: str) -> None:
    def ids(**params: Any) -> set[str]:
        r = httpx.post(stac_server + "/search", json=params)
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]}

    assert ids(intersects=A01) == {"wmo-44029", GRID}
    # a triangle whose bbox holds buoy A01 (-70.566, 42.523) but whose area does not
    miss = {
        "type": "Polygon",
        "coordinates": [[[-70.6, 42.5], [-70.5, 42.6], [-70.6, 42.6], [-70.6, 42.5]]],
    }
    assert "wmo-44029" not in ids(intersects=miss)
    get = httpx.get(stac_server + "/search", params={"intersects": json.dumps(A01)})
    assert {f["id"] for f in get.json()["features"]} == {"wmo-44029", GRID}
    both = httpx.get(
        stac_server + "/search", params={"bbox": "0,0,1,1", "intersects": json.dumps(A01)}
    )
    assert both.status_code == 400
    assert httpx.get(stac_server + "/search", params={"bbox": "100,1,105,0"}).status_code == 400
    assert (
        httpx.post(stac_server + "/search", json={"intersects": {"type": "x"}}).status_code == 400
    )


def test_cql2_text_or_not_timestamp(stac_server: str) -> None:
    def ids(text: str) -> set[str]:
        r = httpx.get(stac_server + "/search", params={"filter": text, "filter-lang": "cql2-text"})
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]}

    assert ids("id = 'wmo-44013' OR id = 'wmo-44029'") == {"wmo-44013", "wmo-44029"}
    assert ids(f"NOT (collection = '{GRID}') AND NOT collection = '{LAYER}'") == {
        "wmo-44013",
        "wmo-44029",
    }
    assert ids("datetime >= TIMESTAMP('2030-01-01T00:00:00Z')") == set()
    assert ids("end_datetime >= TIMESTAMP('2022-06-01T00:00:00Z')") >= {"wmo-44013"}
    # a property no item has is NULL, as CQL2 reads it
    assert ids("eo:cloud_cover < 10") == set()
    assert len(ids("eo:cloud_cover IS NULL")) == 4


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "not", "args": []},
        {"op": "=", "args": [{"property": "id"}]},
        {"op": "nope", "args": []},
        "nested",
    ],
)
def test_bad_filters_are_400(stac_server: str, bad: Any) -> None:
    if bad == "nested":  # 500 levels: written as text, json.dumps would recurse too deep
        inner = '{"op": "=", "args": [{"property": "id"}, "x"]}'
        body = '{"filter": ' + '{"op": "not", "args": [' * 500 + inner + "]}" * 500 + "}"
        r = httpx.post(stac_server + "/search", content=body, headers=JSON)
    else:
        r = httpx.post(stac_server + "/search", json={"filter": bad, "filter-lang": "cql2-json"})
    assert r.status_code == 400, r.text
    text = httpx.get(
        stac_server + "/search", params={"filter": "id = ", "filter-lang": "cql2-text"}
    )
    assert text.status_code == 400


def test_links_types_and_collection_text_search(stac_server: str) -> None:
    landing = httpx.get(stac_server + "/").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    r = httpx.get(desc["href"], headers={"Accept": desc["type"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith(desc["type"])
    page = httpx.get(stac_server + "/collections/ndbc-44013-stdmet/items").json()
    assert any(link["rel"] == "self" for link in page["links"])
    queryables = httpx.get(stac_server + "/queryables").json()
    assert queryables["$id"] == stac_server + "/queryables"
    found = httpx.get(stac_server + "/collections", params={"q": "salinity"}).json()
    assert [c["id"] for c in found["collections"]] == ["ndbc-44029-ocean"]
    assert len(httpx.get(stac_server + "/collections").json()["collections"]) == 5
