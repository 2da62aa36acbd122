"""A grid writer in its own process, for the killed-writer test.

Appends the second half of the MODIS SST file to the lake's `mw-sst` grid. After the chunks
are written and before the commit it prints WRITTEN and waits, so the test can SIGKILL it at
the most dangerous moment: data in storage, commit not yet made.
"""

from __future__ import annotations

import sys
import time

import xarray as xr

from ingest.grids import normalize
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import MW_SST, grid_stream


def main(root: str) -> None:
    storage = Storage.from_settings(Settings(root=root))
    stream = grid_stream("mw-sst", MW_SST)
    ds = normalize(stream, xr.open_dataset(MW_SST).load()).isel(time=slice(30, 60))

    def hold() -> None:
        print("WRITTEN", flush=True)
        time.sleep(120)

    GridStore(storage, "mw-sst").append(ds, "second half", on_written=hold)
    print("COMMITTED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
