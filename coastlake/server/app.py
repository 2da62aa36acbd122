"""`lake serve`: one FastAPI application composing every way to reach the lake.

Every part is installed the same way, `install(app, deps)` with one `LakeDeps`: tabledap
(`/erddap`), `/sql`, downloads (`/data`), the portal's JSON (`/api`), `/healthz`, `/metrics`
and `/status`, the admin routes, the STAC API (`/stac`) and the map services (`/tiles`,
`/wms`, `/grids`, `/features`). Public routes only read; admin routes need the bearer token
set in LAKE_ADMIN_TOKEN. Errors are answered in one place (`coastlake.server.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import stac.search_api
import tiles.app
from coastlake.server import (
    admin,
    contributions,
    cors,
    downloads,
    erddap,
    errors,
    limits,
    metrics,
    plans,
    portal,
    sql,
)
from lake.deps import LakeDeps
from lake.settings import Settings, get_settings
from lake.storage import Storage

log = logging.getLogger(__name__)

#: A part of the server: adds its routes to the app, asking the lake only through `deps`.
ServerPart = Callable[[FastAPI, LakeDeps], None]

#: Every part, in the order its routes are matched.
PARTS: tuple[ServerPart, ...] = (
    limits.install,
    cors.install,
    metrics.install,
    erddap.install,
    sql.install,
    downloads.install,
    portal.install,
    plans.install,
    admin.install,
    contributions.install,
    stac.search_api.install,
    tiles.app.install,
)
#: The map services alone (`lake grid serve`, and tests of the map services).
MAP_PARTS: tuple[ServerPart, ...] = (limits.install, cors.install, tiles.app.install)

#: The built portal (`npm run build` in portal/, run by ./bootstrap).
PORTAL_STATIC = Path(__file__).resolve().parent / "portal_static"


def create_app(
    storage: Storage | None = None,
    settings: Settings | None = None,
    *,
    sql_limits: sql.SqlLimits | None = None,
    parts: Sequence[ServerPart] = PARTS,
) -> FastAPI:
    """The server for one lake (LAKE_ROOT unless `storage` is given), with `parts`."""
    settings = settings or (storage.settings if storage is not None else get_settings())
    if sql_limits is not None:
        settings = settings.model_copy(update=sql_limits.as_settings())
    deps = LakeDeps.create(storage, settings)
    app = FastAPI(
        title="coastlake",
        description="Regional ocean observations: tabledap, SQL, downloads, STAC, tiles, portal.",
        version="0.1",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = deps
    for install in parts:
        install(app, deps)
    errors.install(app)
    served = {"stac": stac.search_api.install in parts, "tiles": tiles.app.install in parts}

    @app.get("/api/services")
    def services() -> dict[str, bool]:
        """Which services this server runs (the portal hides what is absent)."""
        return served

    _install_portal(app)
    return app


def maps_app(storage: Storage) -> FastAPI:
    """A server with only the map services of one lake."""
    return create_app(storage, parts=MAP_PARTS)


def _install_portal(app: FastAPI) -> None:
    """The portal page at / and its bundle at /static, or a page saying how to build it."""
    if (PORTAL_STATIC / "index.html").exists():
        app.mount("/static", StaticFiles(directory=PORTAL_STATIC), name="portal-static")

        @app.get("/", include_in_schema=False)
        def portal_page() -> FileResponse:
            return FileResponse(PORTAL_STATIC / "index.html")

        return
    log.warning("portal not built (%s missing): run ./bootstrap", PORTAL_STATIC / "index.html")

    @app.get("/", include_in_schema=False)
    def no_portal() -> Response:
        return Response(
            "<!DOCTYPE html><p>The portal is not built; run ./bootstrap. The services are at "
            "<a href='/docs'>/docs</a>.</p>",
            media_type="text/html",
        )


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    storage: Storage | None = None,
    parts: Sequence[ServerPart] = PARTS,
) -> None:
    """Serve the lake with uvicorn until interrupted."""
    app = create_app(storage, parts=parts)
    log.info("serving %s at http://%s:%d/", app.state.ctx.storage.root, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
