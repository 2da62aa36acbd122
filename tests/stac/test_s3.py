"""The catalog on S3 (moto's server on 127.0.0.1): built, listed and searchable."""

from __future__ import annotations

import json

import pytest

from lake.settings import Settings
from lake.storage import Storage
from stac import publish
from stac.build import build_catalog
from stac.index import SearchIndex
from tests.stac.conftest import DRAFT, EXTERNAL, stac_registry


@pytest.mark.s3
def test_catalog_on_s3(s3_settings: Settings) -> None:
    storage = Storage.from_settings(s3_settings)
    registry = stac_registry()
    result = build_catalog(storage, registry)
    assert result.collections == len(registry.streams)
    root = json.loads(storage.read_bytes(storage.url("catalog", "catalog.json")))
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert f"./{EXTERNAL}/collection.json" in children
    assert not any(DRAFT in href for href in children)
    assert storage.exists(storage.url("catalog", "unlisted", DRAFT, "collection.json"))
    index = SearchIndex(storage, refresh_s=0)
    assert EXTERNAL in index.published() and DRAFT not in index.published()
    publish.request_review(DRAFT, "Ann", "", storage=storage, registry=registry)
    publish.approve(DRAFT, "Bob", "", storage=storage, registry=registry)
    assert DRAFT in index.published()
