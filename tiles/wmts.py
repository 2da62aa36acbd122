"""WMTS 1.0.0 capabilities (RESTful) for each grid, pointing at the TiTiler tile URLs.

TiTiler 2.4 no longer ships a WMTS endpoint, so this builds the document from morecantile's
WebMercatorQuad: one layer per variable, a `time` dimension, the tile URL template. GetTile
is offered in KVP too (`.../WebMercatorQuad/wmts?REQUEST=GetTile&...`), where a missing
`Time` means the layer's default (newest) time, so a client that does not know the
dimension (OWSLib's `gettile` without `Time`) still gets a tile; it is redirected to the
RESTful tile URL.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

import morecantile
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from lake.storage import Storage
from tiles.deps import DatasetId
from tiles.styles import style_for

TMS_ID = "WebMercatorQuad"


def _tile_matrix_set(tms: morecantile.TileMatrixSet, minzoom: int, maxzoom: int) -> str:
    out = [f"<TileMatrixSet><ows:Identifier>{TMS_ID}</ows:Identifier>"]
    out.append("<ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>")
    for z in range(minzoom, maxzoom + 1):
        m = tms.matrix(z)
        out.append(
            "<TileMatrix>"
            f"<ows:Identifier>{z}</ows:Identifier>"
            f"<ScaleDenominator>{m.scaleDenominator}</ScaleDenominator>"
            f"<TopLeftCorner>{m.pointOfOrigin[0]} {m.pointOfOrigin[1]}</TopLeftCorner>"
            f"<TileWidth>{m.tileWidth}</TileWidth><TileHeight>{m.tileHeight}</TileHeight>"
            f"<MatrixWidth>{m.matrixWidth}</MatrixWidth><MatrixHeight>{m.matrixHeight}</MatrixHeight>"
            "</TileMatrix>"
        )
    out.append("</TileMatrixSet>")
    return "".join(out)


def _operation(name: str, href: str) -> str:
    return (
        f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP><ows:Get xlink:href={quoteattr(href)}>'
        '<ows:Constraint name="GetEncoding"><ows:AllowedValues><ows:Value>KVP</ows:Value>'
        "</ows:AllowedValues></ows:Constraint></ows:Get></ows:HTTP></ows:DCP></ows:Operation>"
    )


def _whole(params: dict[str, str], name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise RequestError(f"GetTile needs {name.upper()} as a whole number") from None


def tile_url(storage: Storage, dataset_id: str, base: str, params: dict[str, str]) -> str:
    """The RESTful tile URL a KVP GetTile names; no TIME means the newest time."""
    layer = params.get("layer", "")
    prefix, _, variable = layer.partition(":")
    if prefix != dataset_id or not variable:
        raise RequestError(f"LAYER must be {dataset_id}:<variable>, got {layer[:80]!r}")
    z, row, col = (_whole(params, k) for k in ("tilematrix", "tilerow", "tilecol"))
    if not (0 <= z <= 24 and 0 <= row < 2**z and 0 <= col < 2**z):
        raise RequestError(f"tile {z}/{col}/{row} is not in {TMS_ID}")
    ds = GridStore(storage, dataset_id).open()
    if variable not in ds.data_vars:
        raise NotFound(f"grid {dataset_id} has no variable {variable!r}")
    query = {"variable": variable}
    if "time" in ds[variable].dims:
        when = params.get("time") or pd.Timestamp(ds["time"].values[-1]).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        query["sel"] = f"time={when}"
    return f"{base}/tiles/{dataset_id}/tiles/{TMS_ID}/{z}/{col}/{row}.png?{urlencode(query)}"


def wmts_document(
    storage: Storage, dataset_id: str, base: str, variables: list[str] | None, maxzoom: int
) -> str:
    """The WMTS Capabilities of one grid (layers = its variables)."""
    ds = GridStore(storage, dataset_id).open()
    names = variables or [str(n) for n, v in ds.data_vars.items() if v.ndim >= 2]
    lat = next(n for n in ("lat", "latitude") if n in ds.coords)
    lon = next(n for n in ("lon", "longitude") if n in ds.coords)
    w, e = float(ds[lon].min()), float(ds[lon].max())
    s, n = float(ds[lat].min()), float(ds[lat].max())
    times = []
    if "time" in ds.coords:
        times = [pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ") for t in ds["time"].values]
    layers = []
    for name in names:
        if name not in ds.data_vars:
            raise NotFound(f"grid {dataset_id} has no variable {name!r}")
        style = style_for(ds[name])
        query = urlencode({"variable": name}) + ("&sel=time={Time}" if times else "")
        tile_path = f"tiles/{TMS_ID}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"
        template = f"{base}/tiles/{dataset_id}/{tile_path}?{query}"
        dim = ""
        if times and "time" in ds[name].dims:
            dim = (
                "<Dimension><ows:Identifier>Time</ows:Identifier>"
                f"<Default>{times[-1]}</Default>"
                + "".join(f"<Value>{t}</Value>" for t in times)
                + "</Dimension>"
            )
        else:
            template = template.replace("&sel=time={Time}", "")
        layers.append(
            "<Layer>"
            f"<ows:Title>{escape(str(ds[name].attrs.get('long_name', name)))}</ows:Title>"
            f"<ows:Identifier>{escape(dataset_id)}:{escape(name)}</ows:Identifier>"
            '<ows:WGS84BoundingBox crs="urn:ogc:def:crs:OGC:2:84">'
            f"<ows:LowerCorner>{w} {s}</ows:LowerCorner><ows:UpperCorner>{e} {n}</ows:UpperCorner>"
            "</ows:WGS84BoundingBox>"
            f'<Style isDefault="true"><ows:Title>{escape(style.colormap)}</ows:Title>'
            "<ows:Identifier>default</ows:Identifier></Style>"
            "<Format>image/png</Format>"
            f"{dim}"
            f"<TileMatrixSetLink><TileMatrixSet>{TMS_ID}</TileMatrixSet></TileMatrixSetLink>"
            f'<ResourceURL format="image/png" resourceType="tile" template={quoteattr(template)}/>'
            "</Layer>"
        )
    tms = morecantile.tms.get(TMS_ID)
    self_url = f"{base}/tiles/{dataset_id}/{TMS_ID}/WMTSCapabilities.xml"
    kvp = f"{base}/tiles/{dataset_id}/{TMS_ID}/wmts?"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'version="1.0.0">'
        f"<ows:ServiceIdentification><ows:Title>coastlake {escape(dataset_id)}</ows:Title>"
        "<ows:ServiceType>OGC WMTS</ows:ServiceType>"
        "<ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>"
        f"<ows:OperationsMetadata>{_operation('GetCapabilities', kvp)}"
        f"{_operation('GetTile', kvp)}</ows:OperationsMetadata>"
        f"<Contents>{''.join(layers)}{_tile_matrix_set(tms, 0, maxzoom)}</Contents>"
        f"<ServiceMetadataURL xlink:href={quoteattr(self_url)}/>"
        "</Capabilities>"
    )


def wmts_router(storage: Storage) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/{dataset_id}/WebMercatorQuad/WMTSCapabilities.xml",
        response_class=Response,
        summary="OGC WMTS 1.0.0 capabilities of a grid",
    )
    def wmts(
        dataset_id: DatasetId,
        request: Request,
        variable: Annotated[list[str] | None, Query(description="Variables (default all)")] = None,
        maxzoom: Annotated[int, Query(ge=0, le=18)] = 12,
    ) -> Response:
        base = str(request.base_url).rstrip("/")
        doc = wmts_document(storage, dataset_id, base, variable, maxzoom)
        return Response(doc, media_type="application/xml")

    @router.get(
        "/{dataset_id}/WebMercatorQuad/wmts",
        response_class=Response,
        summary="OGC WMTS 1.0.0 KVP: GetCapabilities, GetTile (TIME defaults to the newest)",
    )
    def wmts_kvp(dataset_id: DatasetId, request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        base = str(request.base_url).rstrip("/")
        req = params.get("request", "").lower()
        if req == "getcapabilities":
            doc = wmts_document(storage, dataset_id, base, None, 12)
            return Response(doc, media_type="application/xml")
        if req != "gettile":
            raise RequestError("REQUEST must be GetCapabilities or GetTile")
        return RedirectResponse(tile_url(storage, dataset_id, base, params), status_code=307)

    return router
