"""python -m tests.hostile.grid_writer_proc ROOT DATASET_ID: a grid's first write, big enough
(about 1.6 GB in 400 chunks, made as it is written) to be killed half-way by the test."""

from __future__ import annotations

import sys

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage


def main(root: str, dataset_id: str) -> None:
    times = pd.date_range("2024-01-01", periods=400, freq="D")
    lat = np.linspace(-89.875, 89.875, 720)
    lon = np.linspace(-179.875, 179.875, 1440)
    sst = da.random.random((400, 720, 1440), chunks=(1, 720, 1440)).astype("float32")
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst, {"standard_name": "sea_surface_temperature"})},
        coords={"time": times, "lat": lat, "lon": lon},
    )
    GridStore(Storage.from_settings(Settings(root=root)), dataset_id).write(ds, "first write")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
