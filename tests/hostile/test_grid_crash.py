"""A harvest killed while a grid's repository is first made leaves it half made; the next
harvest finds that, clears it and succeeds, and the grid is listed again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.grids import ingest_grid
from lake.grids import GridStore, list_grids
from lake.settings import Settings
from lake.storage import Storage
from tests.ingest.support import make_stream

ERSST = Path(__file__).resolve().parent.parent / "data" / "grids" / "ersst.v4.201606.nc"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def ersst_stream(dataset_id: str, tmp_path: Path) -> object:
    source = tmp_path / "ersst.v4.201606.nc"
    shutil.copy(ERSST, source)
    return make_stream(dataset_id, {"kind": "netcdf", "url": source.as_uri()})


def assert_harvest_succeeds(storage: Storage, dataset_id: str, tmp_path: Path) -> None:
    result = ingest_grid(storage, ersst_stream(dataset_id, tmp_path))  # type: ignore[arg-type]
    assert result.times_added == 1
    store = GridStore(storage, dataset_id)
    assert store.exists()
    assert store.info().times == 1
    assert [g.dataset_id for g in list_grids(storage)] == [dataset_id]
    assert float(store.open()["sst"].isel(time=0).mean()) > 0


@pytest.mark.slow
def test_sigkill_during_first_write_then_a_harvest_succeeds(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    storage = Storage.from_settings(Settings(root=str(root)))
    repo = root / "grids" / "ersst-crash"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.grid_writer_proc", str(root), "ersst-crash"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            chunks = repo / "chunks"
            if chunks.is_dir() and len(os.listdir(chunks)) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the writer finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert repo.is_dir() and any(repo.iterdir()), "the crash left nothing to repair"
    store = GridStore(storage, "ersst-crash")
    assert not store.exists()  # no commit: not a grid readers see
    assert list_grids(storage) == []
    assert_harvest_succeeds(storage, "ersst-crash", tmp_path)


def test_creation_cut_before_its_branch_then_a_harvest_succeeds(tmp_path: Path) -> None:
    """Icechunk writes the first snapshot, then the branch; a crash between them leaves a
    prefix that is no repository and that Icechunk refuses to create one in."""
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    GridStore(storage, "ersst-cut").repo(create=True)
    repo = tmp_path / "lake" / "grids" / "ersst-cut"
    shutil.rmtree(repo / "refs")
    assert (repo / "snapshots").is_dir()
    assert not GridStore(storage, "ersst-cut").exists()
    assert_harvest_succeeds(storage, "ersst-cut", tmp_path)
