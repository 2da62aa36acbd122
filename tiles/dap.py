"""OPeNDAP (DAP2) and OGC EDR over the grids, so THREDDS-era clients keep working.

`xarray.open_dataset(".../grids/datasets/<id>/opendap")` (netCDF4 or pydap engine) reads a
grid; the DAP2 responses (`.dds`, `.das`, `.dods`) are ours (`tiles.dap_response`), because
DAP hyperslabs have an inclusive stop and a stride that a generic server got wrong. EDR
position and area queries (`.../grids/datasets/<id>/edr/position?coords=POINT(lon lat)&f=csv`)
come from xpublish-edr. Datasets are looked up in the lake on each request (cached per
Icechunk snapshot), so a new grid or an append shows without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import xarray as xr
import xpublish
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from xpublish import Plugin, hookimpl

from lake.errors import NotFound, RequestError
from lake.grids import GridStore, list_grids
from lake.storage import Storage
from tiles.dap_constraint import parse_constraint
from tiles.dap_model import dap_entries
from tiles.dap_response import das_text, dds_text, dods_body, response_parts, value_count

log = logging.getLogger(__name__)

PREFIX = "/grids"
#: Most values one .dods answer may carry; a larger request is a 413 asking for a subset.
MAX_DODS_VALUES = 200_000_000
DAP_HEADERS = {"XDODS-Server": "coastlake/DAP2", "Content-Description": "dods-dds"}


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


def edr_app(storage: Storage) -> FastAPI:
    """The xpublish app (EDR) over the lake's grids."""
    from xpublish_edr import CfEdrPlugin

    rest = xpublish.Rest(
        {},
        plugins={"lake-grids": LakeGrids(storage=storage), "edr": CfEdrPlugin()},
        cache_kws={"available_bytes": 0},
    )
    return rest.app


def _grid(storage: Storage, dataset_id: str) -> xr.Dataset:
    store = GridStore(storage, dataset_id)
    if not store.exists():
        raise NotFound(f"no grid {dataset_id!r} in the lake")
    return store.open()


def opendap_router(storage: Storage) -> APIRouter:
    """DAP2: /grids/datasets/{id}/opendap.dds, .das and .dods with constraint expressions."""
    router = APIRouter()
    base = "/datasets/{dataset_id}/opendap"

    @router.get(base + ".dds", response_class=PlainTextResponse)
    def dds(dataset_id: str, request: Request) -> PlainTextResponse:
        entries = dap_entries(_grid(storage, dataset_id))
        parts = response_parts(entries, parse_constraint(request.url.query))
        return PlainTextResponse(dds_text(dataset_id, parts), headers=DAP_HEADERS)

    @router.get(base + ".das", response_class=PlainTextResponse)
    def das(dataset_id: str) -> PlainTextResponse:
        ds = _grid(storage, dataset_id)
        headers = {**DAP_HEADERS, "Content-Description": "dods-das"}
        return PlainTextResponse(das_text(dap_entries(ds), dict(ds.attrs)), headers=headers)

    @router.get(base + ".dods")
    def dods(dataset_id: str, request: Request) -> StreamingResponse:
        entries = dap_entries(_grid(storage, dataset_id))
        parts = response_parts(entries, parse_constraint(request.url.query))
        if (count := value_count(parts)) > MAX_DODS_VALUES:
            raise RequestError(
                f"the request asks for {count:,} values, more than {MAX_DODS_VALUES:,}; "
                "ask for a subset with hyperslabs ([start:stride:stop])",
                status=413,
            )
        head = dds_text(dataset_id, parts).encode() + b"\nData:\n"

        def body() -> Iterable[bytes]:
            yield head
            yield from dods_body(parts)

        headers = {**DAP_HEADERS, "Content-Description": "dods-data"}
        return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)

    return router


def mount_dap(app: FastAPI, storage: Storage) -> None:
    """OPeNDAP at /grids/datasets/{id}/opendap.*, EDR at /grids/datasets/{id}/edr/..."""
    app.include_router(opendap_router(storage), prefix=PREFIX, tags=["OPeNDAP"])
    app.mount(PREFIX, edr_app(storage))
