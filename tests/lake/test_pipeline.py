"""The composed harvest: catalog-only streams are never fetched and never fail."""

from __future__ import annotations

from pathlib import Path

import yaml

from coastlake.harvest import run_harvest
from lake.harvest_log import HarvestLog
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage


def test_external_feeds_are_skipped_not_failed(tmp_path: Path) -> None:
    sample = yaml.safe_load(SAMPLE_REGISTRY.read_text())
    external = [s for s in sample["streams"] if s["source"]["kind"] == "external"]
    assert external, "the sample registry shows an external feed"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"streams": external}))
    registry = load_registry(path)
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    records = run_harvest(storage, registry, registry.streams, progress=False)
    assert records == []
    assert HarvestLog(storage).read().num_rows == 0
