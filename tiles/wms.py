"""A WMS 1.3.0 endpoint over the grids: GetCapabilities and GetMap, so OWSLib, QGIS and other
classic map clients draw the lake's layers as they drew ncWMS/THREDDS ones.

Layers are named `<dataset_id>:<variable>`. TIME and ELEVATION select the step and level
(newest time and surface by default). In WMS 1.3.0 EPSG:4326 has latitude first, so its BBOX
is `minlat,minlon,maxlat,maxlon`; CRS:84 and EPSG:3857 are x/y as usual.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
from fastapi import APIRouter, Request, Response

from lake.errors import NotFound
from lake.grids import GridInfo, list_grids
from lake.storage import Storage
from tiles.render import MapRequest, render_map
from tiles.styles import style_for

log = logging.getLogger(__name__)

SUPPORTED_CRS = ("EPSG:4326", "CRS:84", "EPSG:3857")
XML = "text/xml"


class WmsError(Exception):
    """A request a WMS client got wrong; answered as a ServiceException document."""

    def __init__(self, message: str, code: str = "InvalidParameterValue") -> None:
        super().__init__(message)
        self.code = code


def service_exception(message: str, code: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc">'
        f"<ServiceException code={quoteattr(code)}>{escape(message)}</ServiceException>"
        "</ServiceExceptionReport>"
    )
    return Response(body, media_type=XML, status_code=400)


def _times(info: GridInfo, storage: Storage) -> list[str]:
    from lake.grids import GridStore

    ds = GridStore(storage, info.dataset_id).open()
    if "time" not in ds.coords:
        return []
    return [pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ") for t in ds["time"].values]


def capabilities(storage: Storage, base_url: str, version: str = "1.3.0") -> str:
    """The WMS capabilities document (1.3.0, or 1.1.1 for older clients), one layer per
    grid variable."""
    if version.startswith("1.1"):
        return capabilities_111(storage, base_url)
    from lake.grids import GridStore

    href = quoteattr(base_url + "?")
    layers = []
    grids = list_grids(storage)
    for g in grids:
        if g.bbox is None:
            continue
        w, s, e, n = g.bbox
        ds = GridStore(storage, g.dataset_id).open()
        times = _times(g, storage)
        for v in g.variables:
            style = style_for(ds[v.name])
            dims = ""
            if times and "time" in v.dims:
                dims += (
                    f'<Dimension name="time" units="ISO8601" default="{times[-1]}" '
                    f'nearestValue="1">{",".join(times)}</Dimension>'
                )
            for d in v.dims:
                if d in g.extra_dims and len(g.extra_dims[d]) > 1:
                    values = ",".join(f"{x:g}" for x in g.extra_dims[d])
                    dims += (
                        f'<Dimension name="elevation" units="m" '
                        f'default="{g.extra_dims[d][0]:g}">{values}</Dimension>'
                    )
            title = v.long_name or v.standard_name or v.name
            layers.append(
                f'<Layer queryable="0"><Name>{escape(g.dataset_id)}:{escape(v.name)}</Name>'
                f"<Title>{escape(str(title))} ({escape(g.dataset_id)})</Title>"
                f"<Abstract>{escape(str(v.standard_name or ''))} in {escape(str(v.units or ''))}"
                f"</Abstract>"
                "<EX_GeographicBoundingBox>"
                f"<westBoundLongitude>{w}</westBoundLongitude>"
                f"<eastBoundLongitude>{e}</eastBoundLongitude>"
                f"<southBoundLatitude>{s}</southBoundLatitude>"
                f"<northBoundLatitude>{n}</northBoundLatitude>"
                "</EX_GeographicBoundingBox>"
                f'<BoundingBox CRS="CRS:84" minx="{w}" miny="{s}" maxx="{e}" maxy="{n}"/>'
                f'<BoundingBox CRS="EPSG:4326" minx="{s}" miny="{w}" maxx="{n}" maxy="{e}"/>'
                f"{dims}"
                f"<Style><Name>default</Name><Title>{escape(style.colormap)} "
                f"{style.vmin:g} to {style.vmax:g} {escape(str(v.units or ''))}</Title>"
                f'<LegendURL width="256" height="16"><Format>image/png</Format>'
                f'<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" '
                f'xlink:type="simple" xlink:href={quoteattr(_legend_href(base_url, style))}/>'
                f"</LegendURL></Style>"
                "</Layer>"
            )
    if grids and any(g.bbox for g in grids):
        boxes = [g.bbox for g in grids if g.bbox]
        w = min(b[0] for b in boxes)
        s = min(b[1] for b in boxes)
        e = max(b[2] for b in boxes)
        n = max(b[3] for b in boxes)
    else:
        w, s, e, n = -180.0, -90.0, 180.0, 90.0
    crs = "".join(f"<CRS>{c}</CRS>" for c in SUPPORTED_CRS)
    op = (
        "<DCPType><HTTP><Get><OnlineResource "
        f'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" xlink:href={href}/>'
        "</Get></HTTP></DCPType>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms" '
        'xmlns:xlink="http://www.w3.org/1999/xlink">'
        "<Service><Name>WMS</Name><Title>coastlake grids</Title>"
        "<Abstract>Gridded ocean data of the lake: models, satellites, HF radar</Abstract>"
        f'<OnlineResource xlink:type="simple" xlink:href={href}/>'
        "<MaxWidth>4096</MaxWidth><MaxHeight>4096</MaxHeight></Service>"
        "<Capability><Request>"
        f"<GetCapabilities><Format>text/xml</Format>{op}</GetCapabilities>"
        f"<GetMap><Format>image/png</Format>{op}</GetMap>"
        "</Request><Exception><Format>XML</Format></Exception>"
        f"<Layer><Title>coastlake grids</Title>{crs}"
        "<EX_GeographicBoundingBox>"
        f"<westBoundLongitude>{w}</westBoundLongitude><eastBoundLongitude>{e}</eastBoundLongitude>"
        f"<southBoundLatitude>{s}</southBoundLatitude><northBoundLatitude>{n}</northBoundLatitude>"
        "</EX_GeographicBoundingBox>"
        f"{''.join(layers)}</Layer></Capability></WMS_Capabilities>"
    )


def capabilities_111(storage: Storage, base_url: str) -> str:
    """WMS 1.1.1 (OWSLib's default, older desktop GIS): SRS, LatLonBoundingBox, Extent."""
    from lake.grids import GridStore

    href = quoteattr(base_url + "?")
    op = (
        "<DCPType><HTTP><Get><OnlineResource "
        f'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" xlink:href={href}/>'
        "</Get></HTTP></DCPType>"
    )
    layers = []
    for g in list_grids(storage):
        if g.bbox is None:
            continue
        w, s, e, n = g.bbox
        ds = GridStore(storage, g.dataset_id).open()
        times = _times(g, storage)
        for v in g.variables:
            style = style_for(ds[v.name])
            dims = ""
            if times and "time" in v.dims:
                dims = (
                    '<Dimension name="time" units="ISO8601"/>'
                    f'<Extent name="time" default="{times[-1]}" nearestValue="1">'
                    f"{','.join(times)}</Extent>"
                )
            title = v.long_name or v.standard_name or v.name
            layers.append(
                f'<Layer queryable="0"><Name>{escape(g.dataset_id)}:{escape(v.name)}</Name>'
                f"<Title>{escape(str(title))} ({escape(g.dataset_id)})</Title>"
                f'<LatLonBoundingBox minx="{w}" miny="{s}" maxx="{e}" maxy="{n}"/>'
                f'<BoundingBox SRS="EPSG:4326" minx="{w}" miny="{s}" maxx="{e}" maxy="{n}"/>'
                f"{dims}<Style><Name>default</Name><Title>{escape(style.colormap)} "
                f"{style.vmin:g} to {style.vmax:g}</Title></Style></Layer>"
            )
    srs = "".join(f"<SRS>{c}</SRS>" for c in ("EPSG:4326", "EPSG:3857"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<WMT_MS_Capabilities version="1.1.1">'
        "<Service><Name>OGC:WMS</Name><Title>coastlake grids</Title>"
        f'<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href={href}/>'
        "</Service><Capability><Request>"
        f"<GetCapabilities><Format>application/vnd.ogc.wms_xml</Format>{op}</GetCapabilities>"
        f"<GetMap><Format>image/png</Format>{op}</GetMap>"
        "</Request><Exception><Format>application/vnd.ogc.se_xml</Format></Exception>"
        f"<Layer><Title>coastlake grids</Title>{srs}{''.join(layers)}</Layer>"
        "</Capability></WMT_MS_Capabilities>"
    )


def _legend_href(base_url: str, style: object) -> str:
    root = base_url.rsplit("/wms", 1)[0]
    return f"{root}/tiles/colorMaps/{getattr(style, 'colormap', 'viridis')}?f=png"


def parse_getmap(params: dict[str, str]) -> MapRequest:
    """A GetMap request from its (case-insensitive) parameters; WmsError if malformed."""
    layers = params.get("layers", "")
    if not layers or ":" not in layers.split(",")[0]:
        raise WmsError(
            f"LAYERS must name one layer as dataset:variable, got {layers!r}", "LayerNotDefined"
        )
    dataset_id, variable = layers.split(",")[0].split(":", 1)
    version = params.get("version", "1.3.0")
    crs = (params.get("crs") or params.get("srs") or "").upper()
    if crs not in SUPPORTED_CRS:
        raise WmsError(f"CRS {crs!r} not supported; use one of {SUPPORTED_CRS}", "InvalidCRS")
    try:
        bbox = [float(x) for x in params.get("bbox", "").split(",")]
        width = int(params.get("width", "0"))
        height = int(params.get("height", "0"))
    except ValueError:
        raise WmsError("BBOX, WIDTH and HEIGHT must be numbers") from None
    if len(bbox) != 4 or not (0 < width <= 4096 and 0 < height <= 4096):
        raise WmsError("BBOX needs 4 numbers; WIDTH and HEIGHT 1..4096")
    if crs == "EPSG:4326" and version.startswith("1.3"):
        bbox = [bbox[1], bbox[0], bbox[3], bbox[2]]  # lat/lon axis order of 1.3.0
    if crs in ("EPSG:4326", "CRS:84") and not (-90 <= bbox[1] <= bbox[3] <= 90):
        raise WmsError(
            f"BBOX latitudes {bbox[1]:g}..{bbox[3]:g} outside −90..90 "
            "(WMS 1.3.0 EPSG:4326 is minlat,minlon,maxlat,maxlon)"
        )
    fmt = params.get("format", "image/png").lower()
    if fmt not in ("image/png", "png"):
        raise WmsError(f"FORMAT {fmt!r} not offered; use image/png", "InvalidFormat")
    elevation = params.get("elevation")
    return MapRequest(
        dataset_id=dataset_id,
        variable=variable,
        bbox=(bbox[0], bbox[1], bbox[2], bbox[3]),
        crs="EPSG:4326" if crs == "CRS:84" else crs,
        width=width,
        height=height,
        time=params.get("time") or None,
        elevation=float(elevation) if elevation else None,
        colormap=params.get("colormap") or None,
    )


def wms_router(storage: Storage) -> APIRouter:
    router = APIRouter()

    @router.get("", summary="WMS 1.3.0: GetCapabilities, GetMap")
    def wms(request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        req = params.get("request", "").lower()
        try:
            if req == "getcapabilities":
                base = str(request.url).split("?", 1)[0]
                version = params.get("version", "1.3.0")
                return Response(capabilities(storage, base, version), media_type=XML)
            if req == "getmap":
                map_request = parse_getmap(params)
                try:
                    png = render_map(storage, map_request)
                except NotFound as exc:
                    raise WmsError(str(exc), "LayerNotDefined") from None
                except KeyError as exc:
                    raise WmsError(f"no such variable or time: {exc}", "LayerNotDefined") from None
                return Response(png, media_type="image/png")
            raise WmsError(
                f"REQUEST {params.get('request')!r} not supported; use GetCapabilities or GetMap",
                "OperationNotSupported",
            )
        except WmsError as exc:
            log.info("WMS request refused: %s", exc)
            return service_exception(str(exc), exc.code)

    return router


__all__ = ["WmsError", "capabilities", "parse_getmap", "wms_router"]
