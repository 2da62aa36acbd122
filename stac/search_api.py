"""The STAC API on stac-fastapi, with a thin backend of ours over the stac-geoparquet items.

Why our own backend and not stac-fastapi-geoparquet's: that backend has no free-text
search and hands CQL2 to rustac, whose DuckDB must download its extensions at run time; it
also knows nothing of the publication state. Ours is ~200 lines over the same file, with
DuckDB from the wheels we already pin, and answers `q`, CQL2 on CF standard names and the
draft/published rule.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import attr
from fastapi import FastAPI
from stac_fastapi.api.app import StacApi
from stac_fastapi.api.models import (
    ItemCollectionUri,
    create_get_request_model,
    create_post_request_model,
)
from stac_fastapi.extensions.core import FilterExtension, FreeTextExtension
from stac_fastapi.extensions.core.filter.client import BaseFiltersClient
from stac_fastapi.extensions.core.pagination import OffsetPaginationExtension
from stac_fastapi.types.config import ApiSettings
from stac_fastapi.types.core import BaseCoreClient
from stac_fastapi.types.errors import NotFoundError
from stac_fastapi.types.requests import get_base_url
from stac_fastapi.types.rfc3339 import str_to_interval
from stac_fastapi.types.search import BaseSearchPostRequest
from starlette.requests import Request

from lake.deps import LakeDeps
from lake.errors import RequestError
from lake.storage import Storage
from stac.cql2 import FilterError
from stac.describe import public_url
from stac.index import SearchIndex

log = logging.getLogger(__name__)

#: Where the server mounts the STAC API.
PREFIX = "/stac"

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000


def _base(request: Request) -> str:
    """Base URL of the API, with the mount prefix (the same rule stac-fastapi's links use)."""
    return get_base_url(request).rstrip("/")


def _interval(value: Any) -> tuple[Any, Any] | None:
    if not value:
        return None
    parsed = str_to_interval(value) if isinstance(value, str) else value
    if isinstance(parsed, tuple | list):
        return (parsed[0], parsed[1])
    return (parsed, parsed)


def _filter(expr: Any, lang: str | None) -> Any:
    if expr is None or expr == "":
        return None
    if isinstance(expr, str) and (lang == "cql2-json" or expr.lstrip().startswith("{")):
        try:
            return json.loads(expr)
        except ValueError as exc:
            raise RequestError(f"filter is not valid CQL2-JSON: {exc}") from None
    return expr


def _bbox(value: Any) -> list[float] | None:
    """A bbox of 4 (or 6) numbers, south below north; west may exceed east (antimeridian)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            box = [float(v) for v in value.strip("[]").split(",")]
        else:
            box = [float(v) for v in value]
    except (TypeError, ValueError):
        raise RequestError(f"bbox {value!r} is not four numbers") from None
    if len(box) not in (4, 6):
        raise RequestError(f"bbox {value!r} needs 4 numbers (or 6 with heights)")
    south, north = (box[1], box[3]) if len(box) == 4 else (box[1], box[4])
    if not -90 <= south <= north <= 90:
        raise RequestError(f"bbox {value!r}: south must be <= north, both within -90..90")
    return box


def _intersects(value: Any) -> dict[str, Any] | None:
    """A GeoJSON geometry (GET sends it as JSON text)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RequestError("intersects is not GeoJSON") from None
    if not (isinstance(value, dict) and ("coordinates" in value or "geometries" in value)):
        raise RequestError("intersects must be a GeoJSON geometry")
    return value


def _drop_nulls(value: Any) -> Any:
    """Absent fields stay absent: the items file has a column for every field any item has,
    so a field one item lacks reads back as null."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _server_root(request: Request) -> str:
    """The server's public address (the STAC API is mounted under it at PREFIX)."""
    return _base(request).removesuffix(PREFIX)


def _client_assets(assets: dict[str, Any], request: Request) -> dict[str, Any]:
    """Assets whose hrefs a client machine can follow: links to the server are rebased on
    the address the request reached (the catalog was built with LAKE_PUBLIC_URL, maybe
    unset), and paths on the server's own disk (a lake in a local folder) are left out."""
    built_for, root = public_url(), _server_root(request)
    out = {}
    for key, value in assets.items():
        href = str(value.get("href", ""))
        if href.startswith(built_for + "/"):
            value = {**value, "href": root + href[len(built_for) :]}
        elif href.startswith(("/", "file:")):
            continue
        out[key] = value
    return out


def _matches(collection: dict[str, Any], words: list[str]) -> bool:
    text = " ".join(
        [
            collection.get("id", ""),
            collection.get("title") or "",
            collection.get("description") or "",
            *(collection.get("keywords") or []),
        ]
    ).lower()
    return any(w in text for w in words)


@attr.s
class LakeFilters(BaseFiltersClient):
    """Queryables: the properties a CQL2 filter may name."""

    index: SearchIndex = attr.ib()

    def get_queryables(self, collection_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for name, column in sorted(self.index.queryables.items()):
            if column.is_list:
                props[name] = {"type": "array", "items": {"type": "string"}}
            else:
                props[name] = {"title": name}
        props["cf:standard_name"]["description"] = (
            "CF standard names the item measures; `cf:standard_name = 'x'` means it measures x"
        )
        request: Request | None = kwargs.get("request")
        base = _base(request) if request is not None else PREFIX
        where = f"/collections/{collection_id}" if collection_id else ""
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"{base}{where}/queryables",
            "type": "object",
            "title": "Queryables of the coastlake catalog",
            "properties": props,
            # any other property may be named; where an item lacks it, it is NULL
            "additionalProperties": True,
        }


@attr.s
class LakeClient(BaseCoreClient):
    """Core STAC API over the lake's search index."""

    index: SearchIndex = attr.ib(default=None)

    # -- links ---------------------------------------------------------------------------
    def _item(self, item: dict[str, Any], request: Request) -> dict[str, Any]:
        base = _base(request)
        item = _drop_nulls(item)
        props = item.setdefault("properties", {})
        props.setdefault("datetime", None)  # STAC: null when start/end give the time
        item["assets"] = _client_assets(item.get("assets", {}), request)
        cid = item["collection"]
        item["links"] = [
            {
                "rel": "self",
                "href": f"{base}/collections/{cid}/items/{item['id']}",
                "type": "application/geo+json",
            },
            {"rel": "parent", "href": f"{base}/collections/{cid}", "type": "application/json"},
            {"rel": "collection", "href": f"{base}/collections/{cid}", "type": "application/json"},
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
        ]
        return item

    def _collection(self, collection: dict[str, Any], request: Request) -> dict[str, Any]:
        base = _base(request)
        c = _drop_nulls(json.loads(json.dumps(collection)))
        c["assets"] = _client_assets(c.get("assets", {}), request)
        cid = c["id"]
        built_for, root = public_url(), _server_root(request)
        c["links"] = [
            {**link, "href": root + link["href"][len(built_for) :]}
            if str(link.get("href", "")).startswith(built_for + "/")
            else link
            for link in c.get("links", [])
            if link["rel"] not in ("self", "root", "parent", "items")
        ] + [
            {"rel": "self", "href": f"{base}/collections/{cid}", "type": "application/json"},
            {"rel": "parent", "href": f"{base}/", "type": "application/json"},
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
            {
                "rel": "items",
                "href": f"{base}/collections/{cid}/items",
                "type": "application/geo+json",
            },
        ]
        c["coastlake:publication"] = self.index.states().get(cid)
        return c

    # -- landing -----------------------------------------------------------------------------
    def landing_page(self, **kwargs: Any) -> Any:
        """stac-fastapi's landing page, with the OpenAPI links of this API (mounted at
        PREFIX, its own description is at /api, not the server's /openapi.json)."""
        page = super().landing_page(**kwargs)
        base = _base(kwargs["request"])
        for link in page["links"]:
            if link["rel"] == "service-desc":
                link["href"] = f"{base}/api"
            elif link["rel"] == "service-doc":
                link["href"] = f"{base}/api.html"
        return page

    # -- collections -------------------------------------------------------------------------
    def all_collections(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Published collections; `q` keeps those whose id, title, description or keywords
        hold any of its words."""
        request: Request = kwargs["request"]
        published = self.index.published()
        words = [w.lower() for w in request.query_params.get("q", "").replace(",", " ").split()]
        if words:
            published = [c for c in published if _matches(self.index.collections[c], words)]
        base = _base(request)
        return {
            "collections": [
                self._collection(self.index.collections[c], request) for c in published
            ],
            "links": [
                {"rel": "root", "href": f"{base}/", "type": "application/json"},
                {"rel": "self", "href": f"{base}/collections", "type": "application/json"},
            ],
        }

    def get_collection(self, collection_id: str, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Any collection by id, drafts too: a provider reviews a draft at its address."""
        self.index.refresh()
        if collection_id not in self.index.collections:
            raise NotFoundError(f"no collection {collection_id!r}")
        return self._collection(self.index.collections[collection_id], kwargs["request"])

    def get_item(self, item_id: str, collection_id: str, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        page = self.index.search(
            collections=[collection_id], ids=[item_id], include_unpublished=True, limit=1
        )
        if not page.items:
            raise NotFoundError(f"no item {item_id!r} in collection {collection_id!r}")
        return self._item(page.items[0], kwargs["request"])

    def item_collection(  # type: ignore[override]
        self,
        collection_id: str,
        bbox: Any = None,
        datetime: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
        token: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A collection's items; a draft's items are listed at its own address only."""
        self.index.refresh()
        if collection_id not in self.index.collections:
            raise NotFoundError(f"no collection {collection_id!r}")
        return self._search(
            kwargs["request"],
            {
                "collections": [collection_id],
                "bbox": _bbox(bbox),
                "datetime": datetime,
                "limit": limit,
                "offset": kwargs.get("offset"),
            },
            include_unpublished=True,
        )

    # -- search ----------------------------------------------------------------------------
    def get_search(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        request: Request = kwargs.pop("request")
        args = {
            "collections": kwargs.get("collections"),
            "ids": kwargs.get("ids"),
            "bbox": _bbox(kwargs.get("bbox")),
            "intersects": _intersects(kwargs.get("intersects")),
            "datetime": kwargs.get("datetime"),
            "q": kwargs.get("q"),
            "filter": _filter(
                kwargs.get("filter_expr") or kwargs.get("filter"), kwargs.get("filter_lang")
            ),
            "limit": kwargs.get("limit"),
            "offset": kwargs.get("offset"),
        }
        return self._search(request, args)

    def post_search(self, search_request: BaseSearchPostRequest, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        request: Request = kwargs["request"]
        body = search_request.model_dump(exclude_none=True, by_alias=True)
        args = {
            "collections": body.get("collections"),
            "ids": body.get("ids"),
            "bbox": _bbox(body.get("bbox")),
            "intersects": _intersects(body.get("intersects")),
            "datetime": body.get("datetime"),
            "q": body.get("q"),
            "filter": _filter(body.get("filter"), body.get("filter-lang")),
            "limit": body.get("limit"),
            "offset": body.get("offset"),
        }
        return self._search(request, args)

    def _search(
        self, request: Request, args: dict[str, Any], *, include_unpublished: bool = False
    ) -> dict[str, Any]:
        limit = min(int(args.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
        offset = int(args.get("offset") or 0)
        if args.get("bbox") and args.get("intersects"):
            raise RequestError("bbox and intersects are mutually exclusive; send one")
        try:
            page = self.index.search(
                collections=args.get("collections"),
                ids=args.get("ids"),
                bbox=args.get("bbox"),
                intersects=args.get("intersects"),
                interval=_interval(args.get("datetime")),
                q=args.get("q"),
                filter=args.get("filter"),
                limit=limit,
                offset=offset,
                include_unpublished=include_unpublished,
            )
        except (FilterError, ValueError) as exc:
            raise RequestError(str(exc)) from None
        features = [self._item(i, request) for i in page.items]
        links: list[dict[str, Any]] = [
            {"rel": "root", "href": f"{_base(request)}/", "type": "application/json"},
            {"rel": "self", "href": str(request.url), "type": "application/geo+json"},
        ]
        if offset + len(features) < page.matched:
            if request.method == "POST":
                body = {k: v for k, v in args.items() if v not in (None, [], "")}
                body.update(limit=limit, offset=offset + len(features))
                links.append(
                    {
                        "rel": "next",
                        "href": str(request.url),
                        "method": "POST",
                        "body": body,
                        "type": "application/geo+json",
                    }
                )
            else:
                query = dict(request.query_params)
                query.update(limit=str(limit), offset=str(offset + len(features)))
                href = f"{str(request.url).split('?')[0]}?{urlencode(query)}"
                links.append(
                    {"rel": "next", "href": href, "method": "GET", "type": "application/geo+json"}
                )
        return {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberMatched": page.matched,
            "numberReturned": len(features),
        }


def create_app(storage: Storage, *, index: SearchIndex | None = None) -> FastAPI:
    """A standalone FastAPI app serving the STAC API of the lake at its root."""
    index = index or SearchIndex(storage)
    extensions = [
        FreeTextExtension(),
        FilterExtension(client=LakeFilters(index=index)),
        OffsetPaginationExtension(),
    ]
    settings = ApiSettings(
        stac_fastapi_title="coastlake STAC API",
        stac_fastapi_description=(
            "Search every published dataset of the lake: station series, model and "
            "satellite grids, partners' feeds, by place, time, CF standard name and text."
        ),
        stac_fastapi_landing_id="coastlake",
        enable_response_models=False,
    )
    api = StacApi(
        settings=settings,
        client=LakeClient(index=index),
        extensions=extensions,
        search_get_request_model=create_get_request_model(extensions),
        search_post_request_model=create_post_request_model(extensions),
        items_get_request_model=create_get_request_model(
            [OffsetPaginationExtension()],
            base_model=ItemCollectionUri,
        ),
    )
    return api.app


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Mount the STAC API at /stac on the server's app.

    A mounted app sees the parent's base URL; stac-fastapi builds its links from
    `app.state.router_prefix`, so setting it keeps every link under the mount.
    """
    sub = create_app(deps.storage)
    sub.state.router_prefix = PREFIX
    app.mount(PREFIX, sub)
