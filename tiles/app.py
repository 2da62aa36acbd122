"""The tiles application: TiTiler over the lake's grids, WMS, OPeNDAP/EDR and GIS features.

`mount(app, storage)` adds every route to the lake's one server; `create_app(storage)` builds
an app with only these routes (tests, or running the map services alone).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import ColorMapFactory
from titiler.xarray.factory import TilerFactory

from lake.errors import ConfigError, LakeError, NotFound, SourceError, StorageError
from lake.storage import Storage
from tiles.deps import make_colormap_dependency, make_path_dependency, make_render_dependency
from tiles.reader import make_reader

log = logging.getLogger(__name__)

#: Lake errors to HTTP codes, in one place (as TiTiler does for its own).
STATUS_CODES: dict[type[Exception], int] = {
    NotFound: 404,
    ConfigError: 400,
    SourceError: 502,
    StorageError: 503,
    LakeError: 500,
}


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


def mount(app: FastAPI, storage: Storage) -> None:
    """Add the tile, WMS, preview, OPeNDAP/EDR and features routes to `app`."""
    from tiles.dap import mount_dap
    from tiles.features import features_router
    from tiles.preview import preview_router
    from tiles.wms import wms_router
    from tiles.wmts import wmts_router

    app.include_router(preview_router(storage), prefix="/tiles", tags=["Grids"])
    app.include_router(ColorMapFactory().router, prefix="/tiles", tags=["Grids"])
    app.include_router(wmts_router(storage), prefix="/tiles", tags=["Tiles"])
    factory = tiler_router(storage)
    app.include_router(factory.router, prefix="/tiles/{dataset_id}", tags=["Tiles"])
    app.include_router(wms_router(storage), prefix="/wms", tags=["WMS"])
    app.include_router(features_router(storage), prefix="/features", tags=["Features"])
    mount_dap(app, storage)
    # TiTiler's codes for its own errors; not its catch-all `Exception`, which would change
    # how every other route of the composed server reports failures.
    add_exception_handlers(
        app, {cls: code for cls, code in DEFAULT_STATUS_CODES.items() if cls is not Exception}
    )

    for cls, code in STATUS_CODES.items():

        async def handler(request: Request, exc: Exception, code: int = code) -> JSONResponse:
            return JSONResponse(status_code=code, content={"detail": str(exc)})

        app.add_exception_handler(cls, handler)


def create_app(storage: Storage) -> FastAPI:
    """An app serving only the map routes of one lake (tests; `lake grid serve`)."""
    app = FastAPI(title="coastlake maps", description="Grids and GIS layers of the lake")
    mount(app, storage)
    return app
