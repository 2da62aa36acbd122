"""The upload route: a provider sends a file for one of its streams (`POST /contribute/{id}`).

    curl -H "Authorization: Bearer $TOKEN" --data-binary @obs.csv \\
         "https://lake.example.org/contribute/ndbc-latest-obs?filename=obs.csv"

The token is the admin token (any stream; `provider=` names who sent it, else the stream's
provider) or a provider's own (`LAKE_PROVIDER_TOKENS`: that provider's streams only, named
as the sender). The file goes through the same steps as a harvest (`coastlake.contribute`):
201 with what was read, or 422 naming the file and the fault with nothing written.
"""

from __future__ import annotations

import hmac
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from coastlake.contribute import contribute
from lake.deps import LakeDeps, check_dataset_id
from lake.errors import NotFound, RequestError
from lake.registry import Stream
from lake.settings import Settings

#: A file name as a provider would give it: no folders, no hidden files.
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,200}$")


def sender(request: Request, settings: Settings, stream: Stream, named: str | None) -> str:
    """Who is uploading, from the bearer token; RequestError 401/403 if no one allowed."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise RequestError("uploads need 'Authorization: Bearer <token>'", status=401)
    token = value.strip().encode()
    if settings.admin_token and hmac.compare_digest(token, settings.admin_token.encode()):
        return named or stream.provider.name
    for provider, own in settings.provider_tokens.items():
        if own and hmac.compare_digest(token, own.encode()):
            if provider != stream.provider.name:
                raise RequestError(
                    f"the token of {provider!r} cannot upload to {stream.id!r}, a stream of "
                    f"{stream.provider.name!r}",
                    status=403,
                )
            return provider
    raise RequestError("the upload token is wrong", status=403)


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the file is larger than the {limit:,} bytes allowed", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the file is larger than the {limit:,} bytes allowed", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add POST /contribute/{stream_id}?filename=<name>[&provider=<name>]."""

    @app.post("/contribute/{stream_id}", tags=["contributions"], status_code=201)
    async def upload(
        stream_id: str,
        request: Request,
        filename: str = Query(description="The file's name, kept in the harvest log"),
        provider: str | None = Query(default=None, description="Sender (admin token only)"),
    ) -> Any:
        """Harvest an uploaded CSV or NetCDF file into the stream's dataset."""
        check_dataset_id(stream_id)
        stream = deps.stream(stream_id)
        if stream is None:
            raise NotFound(f"no stream {stream_id!r} in the registry")
        who = sender(request, deps.settings, stream, provider)
        if not _FILENAME.match(filename):
            raise RequestError(
                f"filename {filename!r} is not a plain file name (letters, digits, . _ - space)"
            )
        body = await bounded_body(request, deps.settings.upload_max_bytes)
        if not body:
            raise RequestError(f"{filename}: the upload is empty", status=422)
        with tempfile.TemporaryDirectory(prefix="upload-") as folder:
            path = Path(folder) / filename
            path.write_bytes(body)
            done = await run_in_threadpool(
                contribute, deps.storage, deps.registry(), stream_id, path, who
            )
        record = done.record
        if not done.ok:
            raise RequestError(f"{filename} refused ({record.status}): {record.error}", 422)
        return JSONResponse(
            {
                "stream": stream_id,
                "file": filename,
                "provider": who,
                "status": record.status,
                "values_read": record.rows_in,
                "values_new": record.rows_added,
                "raw_id": record.raw_id,
            },
            status_code=201,
        )
