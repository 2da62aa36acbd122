"""Icechunk transactions: a writer killed mid-append leaves the previous extent readable;
model runs keep forecast_reference_time, build a best estimate, drop superseded runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ingest.grids import ingest_grid, normalize
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.conftest import REPO
from tests.grids.support import MW_SST, grid_stream


@pytest.mark.slow
def test_writer_killed_mid_append_leaves_previous_extent(tmp_path: Path) -> None:
    settings = Settings(root=str(tmp_path / "lake"))
    storage = Storage.from_settings(settings)
    stream = grid_stream("mw-sst", MW_SST)
    src = normalize(stream, xr.open_dataset(MW_SST).load())
    store = GridStore(storage, "mw-sst")
    store.append(src.isel(time=slice(0, 30)), "first half")
    before = store.snapshot_id()
    chunk_files = sum(len(f) for _, _, f in os.walk(tmp_path / "lake" / "grids"))

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.grids.writer_proc", settings.root],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "WRITTEN", line
        # the new chunks really are in storage, uncommitted
        written = sum(len(f) for _, _, f in os.walk(tmp_path / "lake" / "grids"))
        assert written > chunk_files
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    reopened = GridStore(storage, "mw-sst")
    assert reopened.snapshot_id() == before
    lake = reopened.open()
    assert lake.sizes["time"] == 30
    np.testing.assert_array_equal(lake.sst.values, src.sst.isel(time=slice(0, 30)).values)
    # and the store takes the append afterwards
    reopened.append(src.isel(time=slice(30, 60)), "second half, again")
    assert GridStore(storage, "mw-sst").open().sizes["time"] == 60


def _runs_source(tmp_path: Path, start: int, stop: int, name: str) -> Path:
    path = tmp_path / name
    xr.open_dataset(MW_SST).isel(time=slice(start, stop)).to_netcdf(path)
    return path


def test_model_runs_best_estimate_and_superseded_dropped(
    local_settings: Settings, tmp_path: Path
) -> None:
    """Daily satellite fields stand in for model output: each file is a 'run' whose
    reference time is its first step; what matters is how runs combine."""
    storage = Storage.from_settings(local_settings)
    store = GridStore(storage, "model")
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    for start, ref in ((0, "2016-10-18T12:00"), (5, "2016-10-23T12:00"), (10, "2016-10-28T12:00")):
        path = _runs_source(tmp_path, start, start + 10, f"run{start}.nc")
        stream = grid_stream("model", path, category="model", reference_time=ref)
        result = ingest_grid(storage, stream)
        assert result.run == ref.replace("-", "").replace(":", "") + "00Z"
    # superseded runs dropped: only the newest run is kept
    assert store.runs() == ["20161028T120000Z"]
    best = store.open()
    assert best.sizes["time"] == 20  # 5 + 5 from older runs, 10 from the newest
    frt = best.forecast_reference_time.values
    assert str(frt[0])[:13] == "2016-10-18T12"
    assert str(frt[7])[:13] == "2016-10-23T12"
    assert str(frt[-1])[:13] == "2016-10-28T12"
    np.testing.assert_array_equal(best.sst.values, src.sst.isel(time=slice(0, 20)).values)
    run = store.open(group="runs/20161028T120000Z")
    assert run.forecast_reference_time.attrs["standard_name"] == "forecast_reference_time"
    assert run.sizes["time"] == 10


def test_expire_frees_superseded_runs(local_settings: Settings, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    for start, ref in ((0, "2016-10-18T12:00"), (5, "2016-10-23T12:00")):
        path = _runs_source(tmp_path, start, start + 10, f"run{start}.nc")
        ingest_grid(storage, grid_stream("model", path, category="model", reference_time=ref))
    store = GridStore(storage, "model")
    first = store.history()[-2]["id"]  # the commit of the first run
    assert store.open(snapshot=first).sizes["time"] == 10  # time travel still works
    chunks = Path(local_settings.root) / "grids" / "model" / "chunks"
    before = sum(1 for _ in chunks.rglob("*"))
    commits, deleted = store.expire(datetime.now(UTC) + timedelta(seconds=1))
    assert commits >= 2 and deleted > 0
    assert sum(1 for _ in chunks.rglob("*")) < before
    best = GridStore(storage, "model").open()
    assert best.sizes["time"] == 15 and store.runs() == ["20161023T120000Z"]


def test_model_runs_kept_when_retention_says_so(local_settings: Settings, tmp_path: Path) -> None:
    storage = Storage.from_settings(local_settings)
    for start, ref in ((0, "2016-10-18T12:00"), (5, "2016-10-23T12:00")):
        path = _runs_source(tmp_path, start, start + 10, f"run{start}.nc")
        stream = grid_stream(
            "model",
            path,
            category="model",
            reference_time=ref,
            retention={"superseded_runs": True},
        )
        ingest_grid(storage, stream)
    store = GridStore(storage, "model")
    assert store.runs() == ["20161018T120000Z", "20161023T120000Z"]
    old = store.open(group="runs/20161018T120000Z")
    assert old.sizes["time"] == 10
    # an older run arriving late does not change the best estimate
    before = store.open().sst.values.copy()
    late = _runs_source(tmp_path, 0, 10, "late.nc")
    ingest_grid(
        storage,
        grid_stream(
            "model",
            late,
            category="model",
            reference_time="2016-10-10T00:00",
            retention={"superseded_runs": True},
        ),
    )
    np.testing.assert_array_equal(store.open().sst.values, before)
    assert len(store.runs()) == 3


@pytest.mark.s3
def test_grid_on_s3_reads_back(s3_settings: Settings) -> None:
    storage = Storage.from_settings(s3_settings)
    stream = grid_stream("mw-sst", MW_SST)
    src = normalize(stream, xr.open_dataset(MW_SST).load())
    store = GridStore(storage, "mw-sst")
    store.append(src.isel(time=slice(0, 10)), "first")
    store.append(src.isel(time=slice(10, 20)), "second")
    lake = GridStore(storage, "mw-sst").open()
    assert lake.sizes["time"] == 20
    np.testing.assert_array_equal(lake.sst.values, src.sst.isel(time=slice(0, 20)).values)
    assert store.url.startswith("s3://")
