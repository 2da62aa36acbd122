"""Grid streams follow time: --since/--until for every grid source, and a griddap poll asks
for every step after the newest stored one, so a missed poll is filled by the next.

The griddap server here answers like ERDDAP: it cuts the recorded griddap response (CoastWatch
MODIS SST, 60 days) to the time range in the request's query, `last` being the newest day
the provider has published so far."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from coastlake.harvest import HarvestOptions, harvest_stream
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.harvest_log import HarvestLog
from lake.registry import Stream
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import MW_SST, grid_stream
from tests.support.http import RecordedServer, Reply

SST = [{"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"}]
PATH = "/erddap/griddap/erdMWsstd1day.nc"


class Griddap:
    """ERDDAP's time selection over the recorded file: `[(t0):1:(t1)]`, `last` allowed."""

    def __init__(self, server: RecordedServer, published: int) -> None:
        self.server = server
        self.published = published  # days of the file the provider has out so far
        self.source = xr.open_dataset(MW_SST).load()
        self.asked: list[tuple[str, str]] = []
        server.routes[PATH] = self.reply

    def reply(self) -> Reply:
        query = self.server.hits[-1][0].split("?", 1)[1]
        t0, t1 = re.search(r"sst\[\((.+?)\):1:\((.+?)\)\]", query).groups()  # type: ignore[union-attr]
        self.asked.append((t0, t1))
        out = self.source.isel(time=slice(0, self.published))
        last = pd.Timestamp(out.time.values[-1])
        start = last if t0 == "last" else pd.Timestamp(t0).tz_localize(None)
        end = last if t1 == "last" else pd.Timestamp(t1).tz_localize(None)
        if start > last:  # ERDDAP: the start is after the dataset's last time
            return Reply(b'Error {message="Query error: start > last";}', 404, "text/plain")
        body = out.sel(time=slice(start, end)).to_netcdf()
        return Reply(bytes(body), content_type="application/x-netcdf")


def sst_stream(server: RecordedServer, **params: Any) -> Stream:
    return grid_stream(
        "mw-griddap",
        server.url + "/erddap",
        kind="griddap",
        dataset="erdMWsstd1day",
        variables=SST,
        **params,
    )


def times(storage: Storage) -> list[str]:
    lake = GridStore(storage, "mw-griddap").open()
    return [str(t)[:10] for t in lake.time.values]


def test_missed_griddap_polls_are_filled_by_the_next(http_server, tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    provider = Griddap(http_server, published=10)
    stream = sst_stream(http_server)
    # First poll: the newest day ERDDAP has.
    assert ingest_grid(storage, stream).times_added == 1
    assert provider.asked == [("last", "last")]
    assert times(storage) == ["2016-10-27"]
    # Three days pass without a poll (the harvester was down); the next asks from the
    # newest stored day on, and gets all three.
    provider.published = 13
    result = ingest_grid(storage, stream)
    assert provider.asked[-1] == ("2016-10-27T12:00:00Z", "last")
    assert result.times_added == 3
    assert times(storage) == ["2016-10-27", "2016-10-28", "2016-10-29", "2016-10-30"]
    # Values are the provider's, day for day.
    lake = GridStore(storage, "mw-griddap").open()
    src = provider.source.squeeze("altitude").sel(time=lake.time.values)
    np.testing.assert_array_equal(lake.sst.values, src.sst.values)
    # Nothing new: the poll asks again from the newest day and adds nothing.
    assert ingest_grid(storage, stream).times_added == 0


def test_griddap_since_until_ask_for_the_window(http_server, tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    provider = Griddap(http_server, published=60)
    stream = sst_stream(http_server)
    options = HarvestOptions(since=datetime(2016, 11, 1), until=datetime(2016, 11, 5, 23))
    [record] = harvest_stream(storage, stream, options, qc_step=None)
    assert record.status == "ok" and record.rows_in == 5, record.error
    assert provider.asked == [("2016-11-01T00:00:00Z", "2016-11-05T23:00:00Z")]
    assert times(storage) == [f"2016-11-0{d}" for d in range(1, 6)]
    assert (
        HarvestLog(storage)
        .latest()[0]
        .url.endswith("sst[(2016-11-01T00:00:00Z):1:(2016-11-05T23:00:00Z)]")
    )


def test_netcdf_file_since_until_keep_the_window(tmp_path: Path) -> None:
    """A plain NetCDF file holds what it holds: the window is cut after reading."""
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    stream = grid_stream("mw-file", MW_SST)
    result = ingest_grid(
        storage, stream, since=datetime(2016, 12, 10), until=datetime(2016, 12, 31)
    )
    assert result.times_added == 8
    lake = GridStore(storage, "mw-file").open()
    assert str(lake.time.values[0])[:10] == "2016-12-10"
    # A window the file does not reach writes nothing (no empty grid is created).
    other = Storage.from_settings(Settings(root=str(tmp_path / "other")))
    assert ingest_grid(other, stream, since=datetime(2020, 1, 1)).times_added == 0
    assert not GridStore(other, "mw-file").exists()


def test_griddap_beyond_the_last_day_is_a_named_fault(http_server, tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    Griddap(http_server, published=5)
    with pytest.raises(Exception, match=r"mw-griddap.*HTTP 404"):
        ingest_grid(storage, sst_stream(http_server), since=datetime(2017, 1, 1))
    assert not GridStore(storage, "mw-griddap").exists()


def test_thredds_poll_reads_every_step_after_the_newest(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    """A THREDDS catalog whose OPeNDAP dataset (our own server, upstream) grows while a
    poll is missed: the next poll reads every new step through OPeNDAP."""
    from coastlake.server.app import maps_app
    from tests.grids.support import DATA, serve

    upstream = Storage.from_settings(Settings(root=str(tmp_path / "upstream")))
    upstream_stream = grid_stream("mw-sst", MW_SST)
    ingest_grid(upstream, upstream_stream, until=datetime(2016, 10, 27, 12))
    ours = Storage.from_settings(Settings(root=str(tmp_path / "ours")))
    catalog = (DATA / "ncei_namanl_20180220_catalog.xml").read_bytes()
    with serve(maps_app(upstream)) as base:
        catalog = catalog.replace(
            b'base="/thredds/dodsC/"', f'base="{base}/grids/datasets/"'.encode()
        ).replace(
            b'urlPath="namanl/201802/20180220/namanl_218_20180220_0600_006.grb2"',
            b'urlPath="mw-sst/opendap"',
        )
        http_server.routes["/thredds/catalog.xml"] = Reply(catalog, content_type="application/xml")
        stream = grid_stream(
            "mw-sst-thredds",
            f"{http_server.url}/thredds/catalog.xml",
            kind="thredds",
            match="mw-sst",
        )
        assert ingest_grid(ours, stream).times_added == 10
        ingest_grid(upstream, upstream_stream, until=datetime(2016, 10, 30, 12))
        assert ingest_grid(ours, stream).times_added == 3
    lake = GridStore(ours, "mw-sst-thredds").open()
    assert str(lake.time.values[-1])[:10] == "2016-10-30" and lake.sizes["time"] == 13
