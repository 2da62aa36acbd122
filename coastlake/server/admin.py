"""The admin routes (`/admin`): start a harvest, move a dataset through publication.

They need `Authorization: Bearer $LAKE_ADMIN_TOKEN`; without a token set they are off.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from coastlake.harvest import run_harvest
from lake.deps import LakeDeps, check_dataset_id
from lake.errors import NotFound, RequestError
from lake.settings import Settings
from stac import publish

log = logging.getLogger(__name__)

#: The publication workflow's moves, by the action named in the URL.
PUBLISH_ACTIONS: dict[str, Callable[..., Any]] = {
    "request": publish.request_review,
    "approve": publish.approve,
    "reject": publish.reject,
}


class PublishBody(BaseModel):
    """Who moves a dataset through the publication workflow, and why."""

    by: str = Field(min_length=1, description="Name of the reviewer or data manager")
    note: str = ""


def require_admin(settings: Settings) -> Callable[[Request], None]:
    """A dependency refusing requests without the admin bearer token (401/403)."""

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


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add POST /admin/harvest/{stream_id} and POST /admin/publish/{dataset_id}/{action}."""
    api = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin(deps.settings))]
    )
    running: dict[str, threading.Thread] = {}

    @api.post("/harvest/{stream_id}")
    def harvest(stream_id: str) -> dict[str, Any]:
        """Start a harvest of one stream in the background; 409 while one is running."""
        check_dataset_id(stream_id)
        stream = deps.stream(stream_id)
        if stream is None:
            raise NotFound(f"no stream {stream_id!r} in the registry")
        if stream_id in running and running[stream_id].is_alive():
            raise RequestError(f"a harvest of {stream_id!r} is already running", status=409)
        thread = threading.Thread(
            target=run_harvest,
            args=(deps.storage, deps.registry(), [stream]),
            kwargs={"progress": False},
            name=f"harvest-{stream_id}",
            daemon=True,
        )
        running[stream_id] = thread
        thread.start()
        log.info("harvest of %s started by an admin request", stream_id)
        return {"stream_id": stream_id, "status": "started"}

    @api.post("/publish/{dataset_id}/{action}")
    def move(dataset_id: str, action: str, body: PublishBody) -> dict[str, Any]:
        """Move a dataset through draft → review → published: `request`, `approve` or
        `reject`, with the name of who decided."""
        check_dataset_id(dataset_id)
        if action not in PUBLISH_ACTIONS:
            raise RequestError(
                f"unknown publish action {action[:40]!r}; use {sorted(PUBLISH_ACTIONS)}"
            )
        result = PUBLISH_ACTIONS[action](
            dataset_id, body.by, body.note, storage=deps.storage, registry=deps.registry()
        )
        state = getattr(result, "state", None)
        return {
            "dataset_id": dataset_id,
            "action": action,
            "state": str(getattr(state, "value", state)),
        }

    app.include_router(api)
