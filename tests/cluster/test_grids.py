"""`lake grid ingest` on a real Dask cluster against moto's S3 server: the source files are
read and normalized on the two worker processes, the appends' chunks written there too
(Icechunk's distributed write), and the grid is the one the in-process ingest writes
(values, times, chunks, one commit per file with the same messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ingest.grids import ingest_grid
from lake.errors import ParseError
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import MW_SST, grid_stream
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.s3]

FILES = ["sst-1.nc", "sst-2.nc", "sst-3.nc", "sst-4.nc"]


def split_source(folder: Path) -> Path:
    """The real MW SST file cut into four files of 15 days (the last two overlapping by
    five steps, as re-published files do)."""
    folder.mkdir()
    src = xr.open_dataset(MW_SST)
    for name, cut in zip(FILES, [(0, 15), (15, 30), (30, 45), (40, 60)], strict=True):
        src.isel(time=slice(*cut)).to_netcdf(folder / name)
    return folder


def test_grid_ingest_on_the_cluster_equals_the_local_one(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    stream = grid_stream("mw-sst", split_source(tmp_path / "src"), files=FILES)
    remote = Storage.from_settings(s3_settings)
    local = Storage.from_settings(Settings(root=str(tmp_path / "local")))

    with dask_cluster.client() as client:
        got = ingest_grid(remote, stream, cluster=client)
    want = ingest_grid(local, stream)

    assert got.times_added == want.times_added == 60
    assert got.sources == want.sources
    on_s3, here = GridStore(remote, "mw-sst"), GridStore(local, "mw-sst")
    assert [h["message"] for h in on_s3.history()] == [h["message"] for h in here.history()]
    a, b = on_s3.open(), here.open()
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    np.testing.assert_array_equal(a["sst"].values, b["sst"].values)
    assert a["sst"].encoding["chunks"] == b["sst"].encoding["chunks"]
    assert a["sst"].attrs == b["sst"].attrs
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    np.testing.assert_array_equal(a["sst"].values, src["sst"].values)
    # The workers kept the raw files in the bucket, with the settings the tasks carried.
    kept = remote.fs.find(remote.url("raw", "mw-sst"))
    assert len([k for k in kept if not k.endswith(".json")]) == len(FILES)
    assert dask_cluster.workers_that_ran("prepare_grid_source") == set(dask_cluster.workers)
    # The appends were written by the workers holding the data: Icechunk's change sets
    # (one per fork of the session) were made there and merged into the commit.
    log = dask_cluster.task_log()
    written = {t.worker for t in log if "ice-changeset" in t.name and t.status == "OK"}
    assert written and written <= set(dask_cluster.workers)

    # Ingesting the same files again adds nothing and makes no commit.
    commits = len(on_s3.history())
    with dask_cluster.client() as client:
        assert ingest_grid(remote, stream, cluster=client).times_added == 0
    assert len(on_s3.history()) == commits

    # A file that is not NetCDF fails on its worker: the data manager reads the same error
    # as in-process, naming the stream and the file, and the grid is unchanged.
    (tmp_path / "src" / "sst-5.nc").write_bytes(b"<html>502 Bad Gateway</html>")
    broken = grid_stream("mw-sst", tmp_path / "src", files=[*FILES, "sst-5.nc"])
    with dask_cluster.client() as client, pytest.raises(ParseError) as caught:
        ingest_grid(remote, broken, cluster=client)
    assert "stream mw-sst" in str(caught.value) and "sst-5.nc" in str(caught.value)
    assert "not a NetCDF file" in str(caught.value)
    assert len(on_s3.history()) == commits
