"""OPeNDAP and OGC EDR over the grids through xpublish, so THREDDS-era clients keep working.

`xarray.open_dataset(".../grids/datasets/<id>/opendap")` reads a grid; EDR position and area
queries (`.../grids/datasets/<id>/edr/position?coords=POINT(lon lat)&f=csv`) give a time series
at a point as CSV or CoverageJSON. Datasets are looked up in the lake on each request
(cached per Icechunk snapshot), so a new grid or an append shows without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import xarray as xr
import xpublish
from fastapi import FastAPI
from xpublish import Plugin, hookimpl

from lake.errors import NotFound
from lake.grids import GridStore, list_grids
from lake.storage import Storage

log = logging.getLogger(__name__)

PREFIX = "/grids"


class LakeGrids(Plugin):  # type: ignore[misc]
    """xpublish dataset provider: the lake's grids by dataset id."""

    name: str = "lake-grids"
    storage: Any = None

    @hookimpl
    def get_datasets(self) -> Iterable[str]:
        return [g.dataset_id for g in list_grids(self.storage)]

    @hookimpl
    def get_dataset(self, dataset_id: str) -> xr.Dataset | None:
        try:
            ds = GridStore(self.storage, dataset_id).open()
        except NotFound:
            return None
        # xpublish-edr finds axes by CF attributes; make sure they are there.
        for name, axis in (("lat", "Y"), ("latitude", "Y"), ("lon", "X"), ("longitude", "X")):
            if name in ds.coords:
                ds[name].attrs.setdefault("axis", axis)
        return ds


def dap_app(storage: Storage) -> FastAPI:
    """The xpublish app (OPeNDAP + EDR) over the lake's grids."""
    from xpublish_edr import CfEdrPlugin
    from xpublish_opendap import OpenDapPlugin

    rest = xpublish.Rest(
        {},
        plugins={
            "lake-grids": LakeGrids(storage=storage),
            "opendap": OpenDapPlugin(),
            "edr": CfEdrPlugin(),
        },
        cache_kws={"available_bytes": 0},
    )
    return rest.app


def mount_dap(app: FastAPI, storage: Storage) -> None:
    """Mount OPeNDAP/EDR at /grids: /grids/datasets/{id}/opendap, .../edr/position."""
    app.mount(PREFIX, dap_app(storage))
