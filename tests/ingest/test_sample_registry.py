"""The shipped sample registry: a stream of every source kind, all harvested offline from
the recorded files under registry/data (what `lake demo` does, without QC and catalog)."""

from __future__ import annotations

import pytest

from coastlake.harvest import harvest_streams
from lake.reader import Lake
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY
from lake.storage import Storage


@pytest.mark.slow
def test_every_kind_is_in_the_sample_and_harvests_offline(local_settings) -> None:
    registry = load_registry(SAMPLE_REGISTRY)
    # grids register kinds of their own
    in_situ = {"ndbc", "coops", "erddap", "nerrs", "csv", "html"}
    ours = [s for s in registry.streams if s.source.kind in in_situ]
    assert {s.source.kind for s in ours} == in_situ
    storage = Storage.from_settings(local_settings)
    records = harvest_streams(storage, ours, qc_step=None)
    assert all(r.status == "ok" for r in records), [r for r in records if r.status != "ok"]
    assert all(r.url.startswith("file://") for r in records)
    found = set(
        Lake(storage).sql("select distinct dataset_id from observations_all").column(0).to_pylist()
    )
    assert found == {s.id for s in ours}
