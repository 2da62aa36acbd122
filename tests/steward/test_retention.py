"""Retention on a real lake: a NERRS stream whose terms forbid keeping copies, a stream with
a 30-day window and an old raw response, a stream kept forever, and a model grid with two
runs. Each rule does what it says and nothing else changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import xarray as xr

from coastlake.harvest import harvest_streams, run_harvest
from lake.grids import GridStore, clear_open_cache
from lake.raw import RawResponse, RawZone
from lake.reader import Lake
from lake.registry import Kind, load_registry
from lake.settings import Settings
from lake.storage import Storage
from steward.backup import Tree
from steward.retention import apply_retention, last_runs
from tests.conftest import SAMPLE_DATA
from tests.steward.conftest import write_registry

STREAMS = ("ndbc-44013-stdmet", "ndbc-44029-ocean", "nerrs-gndblwq", "wcofs-surface-currents")
RULES = {
    "nerrs_gndblwq": {"retention": {"keep": False, "keep_raw": False, "days": 30}},
    "ndbc_44013_stdmet": {"retention": {"keep": True, "days": 30}},
}
#: The harvest's "now" is 2026; retention runs as if it were ten days after the NDBC file.
NOW = datetime(2022, 6, 10)
SST = SAMPLE_DATA / "coastwatch.pfeg.noaa.gov/erddap/griddap/erdMWsstd1day.nc"


def counts(lk: Lake) -> dict[str, int]:
    rows = lk.sql("select dataset_id, count(*) n from observations_all group by all").to_pylist()
    return {r["dataset_id"]: r["n"] for r in rows}


@pytest.fixture
def lake(tmp_path: Path) -> Storage:
    path = write_registry(tmp_path, STREAMS, **RULES)
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake"), registry=str(path)))
    registry = load_registry(path)
    # The ingest stages alone: run_harvest would apply the retention under test itself.
    harvest_streams(storage, [s for s in registry.streams if s.kind != Kind.grid])
    # Two model runs kept side by side (as a stream that once kept superseded runs would).
    store = GridStore(storage, "wcofs-surface-currents")
    with xr.open_dataset(SST) as sst:
        store.add_run(sst.isel(time=slice(0, 10)).load(), "2016-10-18T12:00", keep_superseded=True)
        store.add_run(sst.isel(time=slice(5, 15)).load(), "2016-10-23T12:00", keep_superseded=True)
    # A raw response of the windowed stream fetched long ago, and one of the forever stream.
    zone = RawZone(storage)
    for stream_id in ("ndbc-44013-stdmet", "ndbc-44029-ocean"):
        zone.put(
            RawResponse(
                stream_id, "https://x/old.txt", b"old " + stream_id.encode(), datetime(2022, 1, 1)
            )
        )
    return storage


def test_retention_does_what_the_rules_say_and_nothing_more(lake: Storage) -> None:
    registry = load_registry(lake.settings.registry)
    lk = Lake(lake)
    before = counts(lk)
    a01_before = lk.sql(
        "select * from observations_all where dataset_id = 'ndbc-44029-ocean' order by all"
    )
    keys_before = Tree(lake).listing()
    assert before["nerrs-gndblwq"] > 40_000

    planned = apply_retention(lake, registry, dry_run=True, now=NOW)
    assert {(a.stream_id, a.what) for a in planned.actions} == {
        ("nerrs-gndblwq", "rows"),
        ("nerrs-gndblwq", "series"),
        ("nerrs-gndblwq", "raw"),
        ("ndbc-44013-stdmet", "rows"),
        ("ndbc-44013-stdmet", "raw"),
        ("wcofs-surface-currents", "runs"),
    }
    assert counts(lk) == before and Tree(lake).listing() == keys_before  # a dry run is dry

    done = apply_retention(lake, registry, now=NOW)
    assert [(a.stream_id, a.what, a.count) for a in done.actions] == [
        (a.stream_id, a.what, a.count) for a in planned.actions
    ]
    after = counts(lk)
    assert "nerrs-gndblwq" not in after  # the terms forbid copies: nothing stored
    assert lk.sql(
        "select count(*) n from latest where dataset_id = 'nerrs-gndblwq'"
    ).to_pylist() == [{"n": 0}]
    oldest = lk.sql(
        "select min(time) t from observations_all where dataset_id = 'ndbc-44013-stdmet'"
    ).to_pylist()[0]["t"]
    assert oldest >= datetime(2022, 5, 11)
    assert 0 < after["ndbc-44013-stdmet"] < before["ndbc-44013-stdmet"]
    # The stream kept forever is exactly as it was.
    assert after["ndbc-44029-ocean"] == before["ndbc-44029-ocean"]
    assert lk.sql(
        "select * from observations_all where dataset_id = 'ndbc-44029-ocean' order by all"
    ).equals(a01_before)

    keys = Tree(lake).listing()
    assert not [k for k in keys if k.startswith("raw/nerrs-gndblwq/")]
    old = [k for k in keys_before if k.startswith("raw/ndbc-44013-stdmet/")]
    assert 0 < len([k for k in keys if k.startswith("raw/ndbc-44013-stdmet/")]) < len(old)
    assert [k for k in keys if k.startswith("raw/ndbc-44029-ocean/")] == [
        k for k in keys_before if k.startswith("raw/ndbc-44029-ocean/")
    ]
    # The files the deletes removed are gone now, not at the next vacuum.
    gone = set(keys_before) - set(keys)
    assert any(k.startswith("tables/observations/") and k.endswith(".parquet") for k in gone)

    clear_open_cache()
    store = GridStore(lake, "wcofs-surface-currents")
    assert store.runs() == ["20161023T120000Z"]
    assert store.open().sizes["time"] == 15  # the best estimate still covers both runs' times
    assert any(k.startswith("grids/wcofs-surface-currents/") for k in gone)

    assert last_runs(lake)[0]["actions"][0]["stream_id"] in {"ndbc-44013-stdmet", "nerrs-gndblwq"}
    again = apply_retention(lake, registry, now=NOW)
    assert again.actions == []  # a second run finds nothing left to do
    lk.close()


def test_a_harvest_applies_retention_before_the_catalog(tmp_path: Path) -> None:
    """NERRS with keep: false through the harvest job: its values were read, QC'd and
    written, and nothing of them is left once the job returns."""
    path = write_registry(tmp_path, ("nerrs-gndblwq", "ndbc-44029-ocean"), **RULES)
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake"), registry=str(path)))
    registry = load_registry(path)
    records = run_harvest(storage, registry, registry.streams, progress=False)
    assert sum(r.rows_added for r in records if r.stream_id == "nerrs-gndblwq") > 40_000
    lk = Lake(storage)
    assert set(counts(lk)) == {"ndbc-44029-ocean"}
    assert not [k for k in Tree(storage).listing() if k.startswith("raw/nerrs-gndblwq/")]
    lk.close()
