"""The same map services over a lake on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import xarray as xr

from coastlake.server.app import maps_app as create_app
from ingest.grids import ingest_grid
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import MW_SST, grid_stream, serve
from tests.tiles.test_http import rgba


@pytest.mark.s3
def test_tiles_and_opendap_from_s3(s3_settings: Settings) -> None:
    storage = Storage.from_settings(s3_settings)
    ingest_grid(storage, grid_stream("mw-sst", MW_SST))
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    with serve(create_app(storage)) as base:
        r = httpx.get(
            f"{base}/tiles/mw-sst/tiles/WebMercatorQuad/7/10/52.png",
            params={"variable": "sst", "sel": "time=2016-10-22T12:00:00"},
            timeout=60,
        )
        assert r.status_code == 200
        assert (rgba(r.content)[..., 3] == 255).sum() > 100
        ds = xr.open_dataset(f"{base}/grids/datasets/mw-sst/opendap")
        np.testing.assert_array_equal(ds.sst.isel(time=4).values, src.sst.isel(time=4).values)
