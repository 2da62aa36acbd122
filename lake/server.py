"""`lake serve`: one FastAPI application composing every way to reach the lake.

Public routes only read: `/erddap` (tabledap), `/sql`, `/data`, `/api` (the portal's JSON),
`/healthz`, `/metrics`, `/status`, and the portal page at `/`. The STAC API (`/stac`) and the
grid services (tiles, WMS, OPeNDAP, EDR) are mounted from the `stac` and `tiles` packages when
they are part of the build. Admin routes (publish, harvest) need the bearer token set in
LAKE_ADMIN_TOKEN; without it they are switched off.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lake import downloads, erddap, metrics, portal_api, sqlapi
from lake.errors import ConfigError, LakeError, NotFound, SourceError, StorageError
from lake.serving import RequestError, ServerContext, check_dataset_id
from lake.settings import Settings, get_settings
from lake.storage import Storage

log = logging.getLogger(__name__)

#: The built portal (`npm run build` in portal/, run by ./bootstrap).
PORTAL_STATIC = Path(__file__).resolve().parent / "portal_static"

#: Error classes to HTTP status, in one place (the first matching class wins).
ERROR_STATUS: tuple[tuple[type[LakeError], int], ...] = (
    (NotFound, 404),
    (ConfigError, 400),
    (SourceError, 502),
    (StorageError, 503),
    (LakeError, 500),
)


def status_for(exc: LakeError) -> int:
    if isinstance(exc, RequestError):
        return exc.status
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _error_body(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/erddap"):
        # ERDDAP's error form, which erddapy surfaces to its users as is.
        text = f'Error {{\n    code={status};\n    message="{message}";\n}}\n'
        return Response(text, status_code=status, media_type="text/plain")
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _require_admin(settings: Settings) -> Any:
    def check(request: Request) -> None:
        token = settings.admin_token
        if not token:
            raise RequestError(
                "admin routes are switched off on this server (LAKE_ADMIN_TOKEN is not set)",
                status=403,
            )
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise RequestError("this route needs 'Authorization: Bearer <admin token>'", 401)
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise RequestError("the admin token is wrong", status=403)

    return check


class PublishBody(BaseModel):
    """Who moves a dataset through the publication workflow, and why."""

    by: str = Field(min_length=1, description="Name of the reviewer or data manager")
    note: str = ""


def _admin_router(ctx: ServerContext) -> APIRouter:
    api = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(_require_admin(ctx.settings))]
    )
    running: dict[str, threading.Thread] = {}

    @api.post("/harvest/{stream_id}")
    def harvest(stream_id: str) -> dict[str, Any]:
        """Start a harvest of one stream in the background; 409 while one is running."""
        check_dataset_id(stream_id)
        stream = ctx.stream(stream_id)
        if stream is None:
            raise NotFound(f"no stream {stream_id!r} in the registry")
        if stream_id in running and running[stream_id].is_alive():
            raise RequestError(f"a harvest of {stream_id!r} is already running", status=409)
        from lake.pipeline import run_harvest

        registry = ctx.registry()
        thread = threading.Thread(
            target=run_harvest,
            args=(ctx.storage, registry, [stream]),
            name=f"harvest-{stream_id}",
            daemon=True,
        )
        running[stream_id] = thread
        thread.start()
        log.info("harvest of %s started by an admin request", stream_id)
        return {"stream_id": stream_id, "status": "started"}

    @api.post("/publish/{dataset_id}/{action}")
    def publish(dataset_id: str, action: str, body: PublishBody) -> dict[str, Any]:
        """Move a dataset through draft → review → published (stac.publish): `request`,
        `approve` or `reject`, with the name of who decided."""
        check_dataset_id(dataset_id)
        try:
            workflow = importlib.import_module("stac.publish")
        except ModuleNotFoundError:
            raise RequestError("the publish workflow is not part of this build", 501) from None
        functions = {"request": "request_review", "approve": "approve", "reject": "reject"}
        if action not in functions:
            raise RequestError(f"unknown publish action {action[:40]!r}; use {sorted(functions)}")
        result = getattr(workflow, functions[action])(
            dataset_id, body.by, body.note, storage=ctx.storage, registry=ctx.registry()
        )
        state = getattr(result, "state", None)
        return {
            "dataset_id": dataset_id,
            "action": action,
            "state": str(getattr(state, "value", state)),
        }

    return api


def _mount_optional(app: FastAPI, module: str, storage: Storage) -> bool:
    """Mount a package that may not be part of this build yet (`stac`, `tiles`)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        log.info("%s is not part of this build: %s", module, exc)
        return False
    mount = getattr(mod, "mount", None)
    if mount is None:
        log.info("%s has no mount(app, storage) yet; not served", module)
        return False
    try:
        mount(app, storage)
    except Exception:
        log.exception("%s could not be mounted; the rest of the server goes on", module)
        return False
    log.info("mounted %s", module)
    return True


def create_app(
    storage: Storage | None = None,
    settings: Settings | None = None,
    *,
    sql_limits: sqlapi.SqlLimits | None = None,
) -> FastAPI:
    """The whole server for one lake (LAKE_ROOT unless `storage` is given)."""
    settings = settings or (storage.settings if storage is not None else get_settings())
    ctx = ServerContext.create(storage, settings)
    app = FastAPI(
        title="coastlake",
        description="Regional ocean observations: tabledap, SQL, downloads, STAC, tiles, portal.",
        version="0.1",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx

    async def lake_error(request: Request, exc: Exception) -> Response:
        status = status_for(exc) if isinstance(exc, LakeError) else 500
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return _error_body(request, status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page or dataset: {request.url.path[:200]}"
        return _error_body(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return _error_body(request, 400, f"bad request: {problems}")

    metrics.install(app, ctx)
    app.include_router(erddap.router(ctx))
    app.include_router(sqlapi.router(ctx, sql_limits))
    app.include_router(downloads.router(ctx))
    app.include_router(portal_api.router(ctx))
    app.include_router(_admin_router(ctx))
    app.state.mounted = {
        name: _mount_optional(app, name, ctx.storage) for name in ("stac", "tiles")
    }

    # Mounted packages may register handlers of their own for lake errors; ours answer last
    # registered, so every route of this app reports errors in the same form.
    for cls in (LakeError, NotFound, ConfigError, SourceError, StorageError, RequestError):
        app.add_exception_handler(cls, lake_error)

    @app.get("/api/services")
    def services() -> dict[str, bool]:
        """Which optional services this build serves (the portal hides what is absent)."""
        return dict(app.state.mounted)

    if (PORTAL_STATIC / "index.html").exists():
        app.mount("/static", StaticFiles(directory=PORTAL_STATIC), name="portal-static")

        @app.get("/", include_in_schema=False)
        def portal() -> FileResponse:
            return FileResponse(PORTAL_STATIC / "index.html")
    else:
        log.warning("portal not built (%s missing): run ./bootstrap", PORTAL_STATIC / "index.html")

        @app.get("/", include_in_schema=False)
        def no_portal() -> Response:
            return Response(
                "<!DOCTYPE html><p>The portal is not built; run ./bootstrap. The services are at "
                "<a href='/docs'>/docs</a>.</p>",
                media_type="text/html",
            )

    return app


def run(host: str = "127.0.0.1", port: int = 8000, storage: Storage | None = None) -> None:
    """Serve the lake with uvicorn until interrupted."""
    import uvicorn

    app = create_app(storage)
    log.info("serving %s at http://%s:%d/", app.state.ctx.storage.root, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
