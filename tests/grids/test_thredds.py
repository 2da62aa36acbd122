"""THREDDS catalogs: a real NCEI catalog gives the right OPeNDAP URLs; a catalog on a local
server leads the ingest to an OPeNDAP endpoint (our xpublish server) and its values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from coastlake.server.app import maps_app as create_app
from ingest.grid_thredds import opendap_urls
from ingest.grids import ingest_grid
from lake.errors import ParseError
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import DATA, MW_SST, grid_stream, serve
from tests.support.http import Reply

NCEI = DATA / "ncei_namanl_20180220_catalog.xml"
NCEI_URL = "https://www.ncei.noaa.gov/thredds/catalog/namanl/201802/20180220/catalog.xml"


def test_real_ncei_catalog_lists_opendap_urls() -> None:
    urls = opendap_urls("namanl", NCEI_URL, NCEI.read_bytes())
    assert urls
    assert all(
        u.startswith("https://www.ncei.noaa.gov/thredds/dodsC/namanl/201802/20180220/")
        for u in urls
    )
    assert urls[0].endswith(".grb2")
    six = opendap_urls("namanl", NCEI_URL, NCEI.read_bytes(), match=r"_0600_", latest=1)
    assert len(six) == 1 and "_0600_" in six[0]
    with pytest.raises(ParseError, match=r"namanl.*no datasets matching 'nothing'"):
        opendap_urls("namanl", NCEI_URL, NCEI.read_bytes(), match="nothing")
    with pytest.raises(ParseError, match="not a THREDDS catalog"):
        opendap_urls("namanl", NCEI_URL, b"<html>")


def test_thredds_stream_follows_catalog_to_opendap(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    upstream = Storage.from_settings(Settings(root=str(tmp_path / "upstream")))
    ingest_grid(upstream, grid_stream("mw-sst", MW_SST))
    ours = Storage.from_settings(Settings(root=str(tmp_path / "ours")))
    with serve(create_app(upstream)) as base:
        # The NCEI catalog's structure, its OPeNDAP service pointed at the local server.
        catalog = NCEI.read_bytes().replace(
            b'base="/thredds/dodsC/"', f'base="{base}/grids/datasets/"'.encode()
        )
        catalog = catalog.replace(
            b'urlPath="namanl/201802/20180220/namanl_218_20180220_0600_006.grb2"',
            b'urlPath="mw-sst/opendap"',
        )
        http_server.routes["/thredds/catalog.xml"] = Reply(catalog, content_type="application/xml")
        stream = grid_stream(
            "mw-sst-thredds",
            f"{http_server.url}/thredds/catalog.xml",
            kind="thredds",
            match=r"mw-sst",
            time=["2016-11-01", "2016-11-05T23:59"],
        )
        result = ingest_grid(ours, stream)
    assert result.sources == [f"{base}/grids/datasets/mw-sst/opendap"]
    assert result.times_added == 5
    lake = GridStore(ours, "mw-sst-thredds").open()
    src = xr.open_dataset(MW_SST).squeeze("altitude")
    np.testing.assert_array_equal(
        lake.sst.values, src.sst.sel(time=slice("2016-11-01", "2016-11-05T23:59")).values
    )
