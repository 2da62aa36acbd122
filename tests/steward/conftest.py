"""A real lake for the stewardship tests: streams of the shipped sample registry (recorded
NDBC, NERRS and ERDDAP responses) harvested with QC into a folder, once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coastlake.harvest import run_harvest
from lake.reader import Lake
from lake.registry import Registry, load_registry
from lake.settings import Settings
from lake.storage import Storage
from tests.conftest import REPO

SAMPLE = REPO / "registry" / "sample.yaml"
#: The streams the tests need: QARTOD flags (44029), a pressure tendency (44013), provider
#: flags and a no-keep rule (NERRS), a grid (MODIS SST).
STREAMS = ("ndbc-44013-stdmet", "ndbc-44029-ocean", "nerrs-gndblwq", "erddap-mw-sst-1day")
#: Contacts the IOOS profile requires; example.org addresses, as the registry has none.
PUBLISHER = {
    "name": "Example Regional Association",
    "url": "https://www.example.org",
    "email": "data@example.org",
}


def write_registry(folder: Path, streams: tuple[str, ...] = STREAMS, **changes: Any) -> Path:
    """The sample registry's `streams`, sources made absolute, with a publisher and provider
    e-mail addresses; `changes` maps a stream id to fields replaced in it."""
    raw = yaml.safe_load(SAMPLE.read_text())
    chosen = []
    for item in raw["streams"]:
        if item["id"] not in streams:
            continue
        source = item["source"]
        if "://" not in source.get("url", "://"):
            source["url"] = (SAMPLE.parent / source["url"]).resolve().as_uri()
        item["provider"] = {**item["provider"], "email": "contact@example.org"}
        item.update(changes.get(item["id"].replace("-", "_"), {}))
        chosen.append(item)
    path = folder / "registry.yaml"
    path.write_text(yaml.safe_dump({"publisher": PUBLISHER, "streams": chosen}))
    return path


def harvested_lake(folder: Path, registry_path: Path) -> tuple[Storage, Registry]:
    settings = Settings(root=str(folder / "lake"), registry=str(registry_path))
    storage = Storage.from_settings(settings)
    registry = load_registry(registry_path)
    run_harvest(storage, registry, registry.streams, progress=False)
    return storage, registry


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lake, Registry]]:
    folder = tmp_path_factory.mktemp("steward")
    # NERRS kept here (the sample registry deletes it after each harvest, as the CDMO's
    # terms ask) so its real provider flags can be written to files and checked.
    keep_nerrs = {"nerrs_gndblwq": {"retention": {"keep": True}}}
    storage, registry = harvested_lake(folder, write_registry(folder, STREAMS, **keep_nerrs))
    lk = Lake(storage)
    yield lk, registry
    lk.close()
