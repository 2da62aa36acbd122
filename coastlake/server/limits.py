"""Bounds on the whole server: how many data and map requests run at once, overall and per
client, and where links point (the public address, never the client's Host header).

A request to a data or map route waits briefly for a free slot and is refused (503) when the
server stays full, or at once (429) when its client already has its share open; operations
routes (`/healthz`, `/metrics`, `/status`) and the portal's page are never held back, so a
monitor sees a busy server as busy, not dead. Both are plain ASGI middleware, so they hold
for every part and every mounted sub-application alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lake.deps import LakeDeps

log = logging.getLogger(__name__)

#: Routes that are cheap and must answer while the heavy ones are busy.
LIGHT_PREFIXES = (
    "/healthz",
    "/metrics",
    "/status",
    "/static",
    # STAC Browser's bundle: dozens of small files fetched at once by one page load.
    "/stac-browser",
    "/docs",
    "/openapi.json",
    "/api/services",
    "/favicon.ico",
)
#: Seconds a data request waits for a free slot before the server answers 503.
WAIT_FOR_SLOT_S = 2.0


def is_light(path: str) -> bool:
    """Whether `path` is an operations route or the portal page (never limited)."""
    return path == "/" or any(
        path == p or path.startswith(p + "/") or path.startswith(p + ".") for p in LIGHT_PREFIXES
    )


async def _refuse(send: Send, status: int, message: str, retry_after_s: int) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after_s).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


class ConcurrencyLimit:
    """At most `total` data requests at once, and at most `per_client` from one address."""

    def __init__(self, app: ASGIApp, *, total: int, per_client: int) -> None:
        self.app = app
        self.total = max(1, total)
        self.per_client = max(1, per_client)
        self._slots: asyncio.Semaphore | None = None
        self._open: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]  # the route's own path, as the router sees it
        if scope["type"] != "http" or is_light(path):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self._open[client] >= self.per_client:
            await _refuse(
                send,
                429,
                f"too many requests at once from this address (at most {self.per_client}); "
                "wait for one to finish",
                1,
            )
            return
        if self._slots is None:  # made on the server's event loop
            self._slots = asyncio.Semaphore(self.total)
        self._open[client] += 1
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), WAIT_FOR_SLOT_S)
            except TimeoutError:
                await _refuse(send, 503, "the server is busy; try again in a few seconds", 2)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                self._slots.release()
        finally:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]


class PublicAddress:
    """Every request seen as sent to the public address, so links built from the request
    (WMS capabilities, the STAC API, tile URLs) point there and never where a client's Host
    header says. Without a public address set, the address the server listens on is used."""

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.scheme: str | None = None
        self.host: bytes | None = None
        self.root_path = ""
        if public_url:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"LAKE_PUBLIC_URL {public_url!r} is not an http(s) address")
            self.scheme, self.host = parts.scheme, parts.netloc.encode()
            self.root_path = parts.path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = self.host
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = (server[0] if server[1] is None else f"{server[0]}:{server[1]}").encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k not in _ADDRESS_HEADERS]
        # Changed in place: outer middleware (the request metrics) read the route from it.
        scope["headers"] = [*headers, (b"host", host)]
        if self.scheme:
            scope["scheme"] = self.scheme
        if self.root_path:
            # As behind a proxy that strips the prefix: the path a link needs carries it, and
            # routing takes it off again (the ASGI convention for root_path).
            scope["root_path"] = self.root_path
            if not scope["path"].startswith(self.root_path + "/"):
                scope["path"] = self.root_path + scope["path"]
                raw = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = self.root_path.encode() + raw
        await self.app(scope, receive, send)


#: Headers clients use to claim another address; links never follow them.
_ADDRESS_HEADERS = frozenset({b"host", b"x-forwarded-host", b"forwarded"})


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Bound concurrent data requests and fix the address links are built from."""
    settings = deps.settings
    app.add_middleware(
        ConcurrencyLimit,
        total=settings.max_requests,
        per_client=settings.max_requests_per_client,
    )
    app.add_middleware(PublicAddress, public_url=settings.public_url)
