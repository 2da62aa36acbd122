"""Data Stream Plans (`/plans/<dataset>.html`, `/plans/<dataset>.md`), generated at each
request from the registry and the lake (`steward.stream_plans`), so they never go stale."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Response

from coastlake.server.formats import MEDIA_TYPES
from lake.deps import LakeDeps, check_dataset_id
from lake.errors import NotFound, RequestError
from steward.stream_plans import stream_plan, to_html, to_markdown

PLAN_FORMATS = {"html": MEDIA_TYPES["html"], "md": "text/markdown; charset=utf-8"}


def plan_url(dataset_id: str) -> str:
    """The path of a stream's generated plan (HTML) on this server."""
    return f"/plans/{dataset_id}.html"


def router(ctx: LakeDeps) -> APIRouter:
    api = APIRouter(prefix="/plans", tags=["stewardship"])

    @api.get("/{name}")
    def plan(name: str) -> Response:
        """A stream's Data Stream Plan as HTML (`<id>.html`) or Markdown (`<id>.md`)."""
        dataset_id, _, fmt = name.rpartition(".")
        if fmt not in PLAN_FORMATS:
            raise RequestError("a plan is <dataset>.html or <dataset>.md")
        check_dataset_id(dataset_id)
        stream = ctx.stream(dataset_id)
        if stream is None:
            raise NotFound(f"no stream {dataset_id!r} in the registry")
        doc = stream_plan(ctx.lake, ctx.registry(), stream, datetime.now(UTC).replace(tzinfo=None))
        body = to_html(doc) if fmt == "html" else to_markdown(doc)
        return Response(body, media_type=PLAN_FORMATS[fmt])

    return api


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add the /plans routes to `app`."""
    app.include_router(router(deps))
