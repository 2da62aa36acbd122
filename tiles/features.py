"""Vector layers shaped like OGC API Features: `/features/collections/{id}/items?bbox=...`.

Plus `/features/collections/{id}/shapefile.zip` for GIS users who want a file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from lake.errors import RequestError
from lake.layers import LayerInfo, layer_info, list_layers, read_layer, to_geojson, to_shapefile_zip
from lake.storage import Storage

GEOJSON = "application/geo+json"


def _collection(info: LayerInfo, base: str) -> dict[str, Any]:
    href = f"{base}/collections/{info.layer_id}"
    return {
        "id": info.layer_id,
        "title": info.title,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "extent": {"spatial": {"bbox": [list(info.bbox)]}},
        "links": [
            {"href": href, "rel": "self", "type": "application/json"},
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON},
            {"href": f"{href}/shapefile.zip", "rel": "alternate", "type": "application/zip"},
        ],
    }


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise RequestError(f"bbox must be minlon,minlat,maxlon,maxlat; got {text!r}") from None
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise RequestError(f"bbox must be minlon,minlat,maxlon,maxlat; got {text!r}")
    return (parts[0], parts[1], parts[2], parts[3])


def features_router(storage: Storage) -> APIRouter:
    router = APIRouter()

    def base(request: Request) -> str:
        return str(request.url).split("/collections", 1)[0].split("?", 1)[0].rstrip("/")

    @router.get("/collections", summary="Vector layers")
    def collections(request: Request) -> dict[str, Any]:
        b = base(request)
        return {
            "collections": [_collection(i, b) for i in list_layers(storage)],
            "links": [{"href": f"{b}/collections", "rel": "self", "type": "application/json"}],
        }

    @router.get("/collections/{layer_id}", summary="One vector layer")
    def collection(layer_id: str, request: Request) -> dict[str, Any]:
        return _collection(layer_info(storage, layer_id), base(request))

    @router.get("/collections/{layer_id}/items", summary="Features as GeoJSON, bbox-filtered")
    def items(
        layer_id: str,
        request: Request,
        bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        box = _bbox(bbox)
        gdf = read_layer(storage, layer_id, bbox=box)
        matched = len(gdf)
        page = gdf.iloc[offset : offset + limit]
        doc = to_geojson(page)
        doc["numberMatched"] = matched
        doc["numberReturned"] = len(page)
        links = []
        if offset + limit < matched:
            nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
            links.append({"href": str(nxt), "rel": "next", "type": GEOJSON})
        doc["links"] = links
        import json

        return Response(json.dumps(doc), media_type=GEOJSON)

    @router.get("/collections/{layer_id}/shapefile.zip", summary="The layer as a zipped Shapefile")
    def shapefile(
        layer_id: str,
        bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    ) -> Response:
        gdf = read_layer(storage, layer_id, bbox=_bbox(bbox))
        return Response(
            to_shapefile_zip(gdf, layer_id),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{layer_id}.zip"'},
        )

    return router
