"""CORS for the read-only services, so a web map or notebook page on another origin can use
the lake's tiles, WMS/WMTS, STAC, tabledap and OPeNDAP.

Origins come from LAKE_CORS_ORIGINS (comma-separated, `*` for any, empty for none). Only
reading methods are allowed, credentials are never shared, and the admin routes are left
out entirely, so a page elsewhere can read what any client can, and nothing more.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from lake.deps import LakeDeps

#: Paths that never answer another origin.
PRIVATE_PREFIXES = ("/admin",)


class ReadOnlyCors:
    """Starlette's CORS middleware for every path but the private ones."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],  # POST: STAC search, SQL reads
            allow_headers=["Accept", "Content-Type", "Range"],
            allow_credentials=False,
            expose_headers=["Content-Disposition", "X-Rows"],
            max_age=3600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PRIVATE_PREFIXES):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def origins(setting: str) -> list[str]:
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Answer cross-origin reads from LAKE_CORS_ORIGINS."""
    allowed = origins(deps.settings.cors_origins)
    if allowed:
        app.add_middleware(ReadOnlyCors, origins=allowed)
