"""The map services: TiTiler over the lake's grids, WMS, OPeNDAP/EDR and GIS features.

`install(app, deps)` adds every route to the lake's server; errors travel as lake errors and
the server maps them to HTTP statuses in one place.
"""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI
from titiler.core.factory import ColorMapFactory
from titiler.xarray.factory import TilerFactory

from lake.deps import LakeDeps
from lake.storage import Storage
from tiles.bounds import check_raster_request
from tiles.dap import mount_dap
from tiles.deps import make_colormap_dependency, make_path_dependency, make_render_dependency
from tiles.features import features_router
from tiles.preview import preview_router
from tiles.reader import make_reader
from tiles.wfs import wfs_router
from tiles.wms import wms_router
from tiles.wmts import wmts_router

log = logging.getLogger(__name__)


def tiler_router(storage: Storage) -> TilerFactory:
    """TiTiler's xarray factory with our reader and CF styles, under /tiles/{dataset_id}."""
    return TilerFactory(
        reader=make_reader(storage),
        path_dependency=make_path_dependency(),
        colormap_dependency=make_colormap_dependency(storage),
        render_dependency=make_render_dependency(storage),  # type: ignore[arg-type]
        router_prefix="/tiles/{dataset_id}",
        add_viewer=False,
        add_part=True,
        add_preview=False,
    )


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add the tile, WMS, preview, OPeNDAP/EDR and features routes to the server `app`."""
    storage = deps.storage
    app.include_router(preview_router(storage), prefix="/tiles", tags=["Grids"])
    app.include_router(ColorMapFactory().router, prefix="/tiles", tags=["Grids"])
    checked = [Depends(check_raster_request)]  # bounds, sizes, tile indices first
    app.include_router(wmts_router(storage), prefix="/tiles", tags=["Tiles"], dependencies=checked)
    factory = tiler_router(storage)
    app.include_router(
        factory.router, prefix="/tiles/{dataset_id}", tags=["Tiles"], dependencies=checked
    )
    app.include_router(wms_router(storage), prefix="/wms", tags=["WMS"])
    app.include_router(wfs_router(storage), prefix="/wfs", tags=["WFS"])
    app.include_router(features_router(storage), prefix="/features", tags=["Features"])
    mount_dap(app, storage)
