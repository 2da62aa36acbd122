"""Grid sources beyond plain files: OPeNDAP (a THREDDS-style endpoint, here our own xpublish
server on 127.0.0.1) and the CLI path `lake grid ingest --stream` with `lake status`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from coastlake.server.app import maps_app as create_app
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.conftest import REPO
from tests.grids.support import MW_SST, grid_stream, serve


def test_opendap_source_subset_by_bbox_and_time(tmp_path: Path) -> None:
    upstream = Storage.from_settings(Settings(root=str(tmp_path / "upstream")))
    ingest_grid(upstream, grid_stream("mw-sst", MW_SST))
    ours = Storage.from_settings(Settings(root=str(tmp_path / "ours")))
    with serve(create_app(upstream)) as base:
        stream = grid_stream(
            "mw-sst-dap",
            f"{base}/grids/datasets/mw-sst/opendap",
            kind="opendap",
            bbox=[-149.8, 30.2, -149.5, 30.6],
            time=["2016-11-01", "2016-11-10T23:59"],
        )
        result = ingest_grid(ours, stream)
    assert result.times_added == 10
    lake = GridStore(ours, "mw-sst-dap").open()
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    want = src.sst.sel(
        time=slice("2016-11-01", "2016-11-10T23:59"),
        latitude=slice(30.2, 30.6),
        longitude=slice(210.2, 210.5),
    )
    assert lake.sst.shape == want.shape
    np.testing.assert_array_equal(lake.sst.values, want.values)


@pytest.mark.slow
def test_cli_grid_ingest_and_status(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LAKE_ROOT": str(tmp_path / "lake"),
        "LAKE_REGISTRY": str(REPO / "registry" / "sample.yaml"),
        "PYTHONPATH": str(REPO),
    }
    lake = [str(Path(sys.executable).parent / "lake")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*lake, *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=600
        )

    done = run("grid", "ingest", "--stream", "erddap-mw-sst-1day")
    assert done.returncode == 0, done.stderr
    assert "60 new time step(s)" in done.stderr + done.stdout
    layer = run("layer", "ingest", "--stream", "ca-state-boundary")
    assert layer.returncode == 0, layer.stderr
    status = run("status")
    assert status.returncode == 0, status.stderr
    assert "erddap-mw-sst-1day" in status.stdout and "ca-state-boundary" in status.stdout
