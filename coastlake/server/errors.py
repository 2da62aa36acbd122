"""Errors to HTTP answers, in one place for every part of the server (as TiTiler does).

Package code raises lake errors (`NotFound`, `RequestError`, ...), never HTTP exceptions;
this module decides the status and the body. `install(app)` puts the handlers on the app
and on every sub-application mounted in it (the STAC API, OPeNDAP/EDR), so a client gets
the same form of error from every route.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount
from titiler.core.errors import DEFAULT_STATUS_CODES as TITILER_STATUS_CODES

from lake.errors import (
    ConfigError,
    LakeError,
    NotFound,
    RequestError,
    SourceError,
    StorageError,
)

log = logging.getLogger(__name__)

#: Error classes to HTTP status; the first matching class wins. TiTiler's own errors (a
#: tile outside the bounds, a bad colormap, ...) keep the codes TiTiler gives them; its
#: catch-all `Exception` is left out, so a bug stays a logged 500.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (ConfigError, 400),
    (SourceError, 502),
    (StorageError, 503),
    (LakeError, 500),
    *((cls, code) for cls, code in TITILER_STATUS_CODES.items() if cls is not Exception),
)


def status_for(exc: Exception) -> int:
    """The HTTP status a client gets for `exc`."""
    if isinstance(exc, RequestError):
        return exc.status
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(request: Request, status: int, message: str) -> Response:
    """JSON `{"error", "status"}`; under /erddap, ERDDAP's own error form."""
    if request.url.path.startswith("/erddap"):
        # ERDDAP's error form, which erddapy surfaces to its users as is.
        text = f'Error {{\n    code={status};\n    message="{message}";\n}}\n'
        return Response(text, status_code=status, media_type="text/plain")
    return JSONResponse({"error": message, "status": status}, status_code=status)


def public_message(message: str, hidden: tuple[str, ...]) -> str:
    """`message` without the server's own locations (the lake root, the registry's folder,
    temp folders): a client learns what was wrong, not where the lake lives."""
    for place in hidden:
        if place and len(place) > 1:
            message = message.replace(place, "<lake>")
    return message


def _hidden_places(request: Request) -> tuple[str, ...]:
    ctx = getattr(request.app.state, "ctx", None)
    settings = getattr(ctx, "settings", None)
    if settings is None:
        return ()
    places = [str(settings.root).rstrip("/"), str(settings.registry).rsplit("/", 1)[0]]
    # Longest first, so a root inside the registry's folder is replaced whole.
    return tuple(sorted((p for p in places if p), key=len, reverse=True))


async def _mapped_error(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return error_body(request, status, public_message(str(exc), _hidden_places(request)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such page or dataset: {request.url.path[:200]}"
    return error_body(request, exc.status_code, message)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
    )
    return error_body(request, 400, f"bad request: {problems}")


def install(app: FastAPI) -> None:
    """Answer every mapped error of `app` and of the FastAPI apps mounted in it.

    Mounted apps keep their own answers to HTTP and validation errors (stac-fastapi's
    form, which STAC clients expect); lake errors raised inside them get ours.
    """
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    mounted = [r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, FastAPI)]
    for sub in mounted:  # mounted apps hide the same places as the app
        if getattr(app.state, "ctx", None) is not None and getattr(sub.state, "ctx", None) is None:
            sub.state.ctx = app.state.ctx
    for target in [app, *mounted]:
        for cls, _ in ERROR_STATUS:
            target.add_exception_handler(cls, _mapped_error)
        target.add_exception_handler(RequestError, _mapped_error)
