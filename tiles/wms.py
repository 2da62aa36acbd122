"""A WMS 1.3.0 endpoint over the grids: GetCapabilities and GetMap, so OWSLib, QGIS and other
classic map clients draw the lake's layers as they drew ncWMS/THREDDS ones.

Layers are named `<dataset_id>:<variable>`. TIME and ELEVATION select the step and level
(newest time and surface by default). In WMS 1.3.0 EPSG:4326 has latitude first, so its BBOX
is `minlat,minlon,maxlat,maxlon`; CRS:84 and EPSG:3857 are x/y as usual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
import xarray as xr
from fastapi import APIRouter, Request, Response

from lake.errors import NotFound, RequestError
from lake.grids import GridInfo, GridStore, GridVariable, list_grids
from lake.names import check_dataset_id
from lake.storage import Storage
from lake.times import parse_time
from tiles.bounds import MAX_IMAGE_SIDE, check_bbox, check_image_size, check_number
from tiles.featureinfo import feature_info, legend_png
from tiles.render import MapRequest, render_map
from tiles.styles import Style, style_for

log = logging.getLogger(__name__)

SUPPORTED_CRS = ("EPSG:4326", "CRS:84", "EPSG:3857")
#: A layer's variable name: a NetCDF/Zarr variable, nothing that could be a path.
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
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


Bbox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class WmsVersion:
    """How one WMS version spells a capabilities document; the layer loop is shared.

    1.3.0 names reference systems CRS and lists EPSG:4326 latitude first; 1.1.1 (OWSLib's
    default, older desktop GIS) names them SRS, keeps x/y order, gives dimension values in
    a separate Extent element and has no geographic bounding box element of the 1.3.0 kind.
    """

    number: str
    crs_tag: str
    lat_first: bool
    #: Dimensions a layer lists, in order (1.1.1 clients get no elevation).
    dimensions: tuple[str, ...]
    #: Abstract with CF name and units, units in the style title, and a legend image.
    describe_units: bool
    #: Dimension values in an Extent element of their own instead of inside Dimension.
    separate_extent: bool
    geographic_box: Callable[[Bbox], str]
    document: Callable[[str, list[GridInfo], str], str]


def _times(ds: xr.Dataset) -> list[str]:
    if "time" not in ds.coords:
        return []
    return [pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ") for t in ds["time"].values]


def capabilities(storage: Storage, base_url: str, version: str = "1.3.0") -> str:
    """The WMS capabilities document (1.3.0, or 1.1.1 for older clients), one layer per
    grid variable."""
    wms = WMS_111 if version.startswith("1.1") else WMS_130
    grids = list_grids(storage)
    layers: list[str] = []
    for g in grids:
        if g.bbox is None:
            continue
        ds = GridStore(storage, g.dataset_id).open()
        times = _times(ds)
        layers += (
            _layer(wms, g, g.bbox, v, style_for(ds[v.name]), times, base_url) for v in g.variables
        )
    return wms.document(base_url, grids, "".join(layers))


def _layer(
    wms: WmsVersion,
    g: GridInfo,
    bbox: Bbox,
    v: GridVariable,
    style: Style,
    times: list[str],
    base_url: str,
) -> str:
    """One grid variable as a named layer, `bbox` being the grid's."""
    w, s, e, n = bbox
    title = v.long_name or v.standard_name or v.name
    units = escape(str(v.units or ""))
    abstract = ""
    style_title = f"{escape(style.colormap)} {style.vmin:g} to {style.vmax:g}"
    legend = ""
    if wms.describe_units:
        abstract = f"<Abstract>{escape(str(v.standard_name or ''))} in {units}</Abstract>"
        style_title += f" {units}"
        legend = (
            '<LegendURL width="256" height="16"><Format>image/png</Format>'
            '<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'xlink:type="simple" xlink:href={quoteattr(_legend_href(base_url, style))}/>'
            "</LegendURL>"
        )
    box = (s, w, n, e) if wms.lat_first else (w, s, e, n)
    return (
        f'<Layer queryable="1"><Name>{escape(g.dataset_id)}:{escape(v.name)}</Name>'
        f"<Title>{escape(str(title))} ({escape(g.dataset_id)})</Title>"
        f"{abstract}{wms.geographic_box(bbox)}"
        f'<BoundingBox {wms.crs_tag}="EPSG:4326" '
        f'minx="{box[0]}" miny="{box[1]}" maxx="{box[2]}" maxy="{box[3]}"/>'
        f"{_dimensions(wms, g, v, times)}"
        f"<Style><Name>default</Name><Title>{style_title}</Title>{legend}</Style>"
        "</Layer>"
    )


def _dimensions(wms: WmsVersion, g: GridInfo, v: GridVariable, times: list[str]) -> str:
    """TIME (newest by default) and ELEVATION (first level by default) of a layer."""
    out = ""
    if "time" in wms.dimensions and times and "time" in v.dims:
        out += _dimension(wms, "time", "ISO8601", times[-1], ",".join(times), nearest=True)
    if "elevation" in wms.dimensions:
        for d in v.dims:
            if d in g.extra_dims and len(g.extra_dims[d]) > 1:
                levels = g.extra_dims[d]
                values = ",".join(f"{x:g}" for x in levels)
                out += _dimension(wms, "elevation", "m", f"{levels[0]:g}", values)
    return out


def _dimension(
    wms: WmsVersion, name: str, units: str, default: str, values: str, nearest: bool = False
) -> str:
    """A dimension and its values: one element in 1.3.0, Dimension plus Extent in 1.1.1."""
    near = ' nearestValue="1"' if nearest else ""
    if wms.separate_extent:
        return (
            f'<Dimension name="{name}" units="{units}"/>'
            f'<Extent name="{name}" default="{default}"{near}>{values}</Extent>'
        )
    return (
        f'<Dimension name="{name}" units="{units}" default="{default}"{near}>{values}</Dimension>'
    )


def _geographic_box_130(bbox: Bbox) -> str:
    w, s, e, n = bbox
    return (
        "<EX_GeographicBoundingBox>"
        f"<westBoundLongitude>{w}</westBoundLongitude>"
        f"<eastBoundLongitude>{e}</eastBoundLongitude>"
        f"<southBoundLatitude>{s}</southBoundLatitude>"
        f"<northBoundLatitude>{n}</northBoundLatitude>"
        "</EX_GeographicBoundingBox>"
        f'<BoundingBox CRS="CRS:84" minx="{w}" miny="{s}" maxx="{e}" maxy="{n}"/>'
    )


def _geographic_box_111(bbox: Bbox) -> str:
    w, s, e, n = bbox
    return f'<LatLonBoundingBox minx="{w}" miny="{s}" maxx="{e}" maxy="{n}"/>'


def _operation(base_url: str) -> str:
    """Where to send a request (GET on the endpoint itself)."""
    return (
        "<DCPType><HTTP><Get><OnlineResource "
        'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" '
        f"xlink:href={quoteattr(base_url + '?')}/>"
        "</Get></HTTP></DCPType>"
    )


def _extra_operations(op: str) -> str:
    """GetFeatureInfo (value at a pixel) and GetLegendGraphic (colour bar)."""
    return (
        "<GetFeatureInfo><Format>application/json</Format><Format>text/plain</Format>"
        f"{op}</GetFeatureInfo>"
        f'<sld:GetLegendGraphic xmlns:sld="http://www.opengis.net/sld"><Format>image/png</Format>'
        f"{op}</sld:GetLegendGraphic>"
    )


def _document_130(base_url: str, grids: list[GridInfo], layers: str) -> str:
    boxes = [g.bbox for g in grids if g.bbox]
    if boxes:
        w = min(b[0] for b in boxes)
        s = min(b[1] for b in boxes)
        e = max(b[2] for b in boxes)
        n = max(b[3] for b in boxes)
    else:
        w, s, e, n = -180.0, -90.0, 180.0, 90.0
    crs = "".join(f"<CRS>{c}</CRS>" for c in SUPPORTED_CRS)
    op = _operation(base_url)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms" '
        'xmlns:xlink="http://www.w3.org/1999/xlink">'
        "<Service><Name>WMS</Name><Title>coastlake grids</Title>"
        "<Abstract>Gridded ocean data of the lake: models, satellites, HF radar</Abstract>"
        f'<OnlineResource xlink:type="simple" xlink:href={quoteattr(base_url + "?")}/>'
        f"<MaxWidth>{MAX_IMAGE_SIDE}</MaxWidth><MaxHeight>{MAX_IMAGE_SIDE}</MaxHeight></Service>"
        "<Capability><Request>"
        f"<GetCapabilities><Format>text/xml</Format>{op}</GetCapabilities>"
        f"<GetMap><Format>image/png</Format>{op}</GetMap>"
        f"{_extra_operations(op)}"
        "</Request><Exception><Format>XML</Format></Exception>"
        f"<Layer><Title>coastlake grids</Title>{crs}"
        "<EX_GeographicBoundingBox>"
        f"<westBoundLongitude>{w}</westBoundLongitude><eastBoundLongitude>{e}</eastBoundLongitude>"
        f"<southBoundLatitude>{s}</southBoundLatitude><northBoundLatitude>{n}</northBoundLatitude>"
        "</EX_GeographicBoundingBox>"
        f"{layers}</Layer></Capability></WMS_Capabilities>"
    )


def _document_111(base_url: str, grids: list[GridInfo], layers: str) -> str:
    srs = "".join(f"<SRS>{c}</SRS>" for c in ("EPSG:4326", "EPSG:3857"))
    op = _operation(base_url)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<WMT_MS_Capabilities version="1.1.1">'
        "<Service><Name>OGC:WMS</Name><Title>coastlake grids</Title>"
        '<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" '
        f"xlink:href={quoteattr(base_url + '?')}/>"
        "</Service><Capability><Request>"
        f"<GetCapabilities><Format>application/vnd.ogc.wms_xml</Format>{op}</GetCapabilities>"
        f"<GetMap><Format>image/png</Format>{op}</GetMap>"
        f"{_extra_operations(op)}"
        "</Request><Exception><Format>application/vnd.ogc.se_xml</Format></Exception>"
        f"<Layer><Title>coastlake grids</Title>{srs}{layers}</Layer>"
        "</Capability></WMT_MS_Capabilities>"
    )


WMS_130 = WmsVersion(
    number="1.3.0",
    crs_tag="CRS",
    lat_first=True,
    dimensions=("time", "elevation"),
    describe_units=True,
    separate_extent=False,
    geographic_box=_geographic_box_130,
    document=_document_130,
)
WMS_111 = WmsVersion(
    number="1.1.1",
    crs_tag="SRS",
    lat_first=False,
    dimensions=("time",),
    describe_units=False,
    separate_extent=True,
    geographic_box=_geographic_box_111,
    document=_document_111,
)


def _legend_href(base_url: str, style: object) -> str:
    root = base_url.rsplit("/wms", 1)[0]
    return f"{root}/tiles/colorMaps/{getattr(style, 'colormap', 'viridis')}?f=png"


def parse_getmap(params: dict[str, str]) -> MapRequest:
    """A GetMap request from its (case-insensitive) parameters; WmsError if malformed.

    Every value is checked here, before any reprojection: the layer's dataset id by the
    lake's one name check, the box finite and inside the CRS, the size within the cap, the
    time a time and the elevation a number."""
    layers = params.get("layers", "")
    if not layers or ":" not in layers.split(",")[0]:
        raise WmsError(
            f"LAYERS must name one layer as dataset:variable, got {layers[:80]!r}",
            "LayerNotDefined",
        )
    dataset_id, variable = layers.split(",")[0].split(":", 1)
    try:
        check_dataset_id(dataset_id)
    except RequestError as exc:
        raise WmsError(f"LAYERS: {exc}", "LayerNotDefined") from None
    if not VARIABLE.match(variable):
        raise WmsError(f"LAYERS: variable {variable[:80]!r} is not a valid name", "LayerNotDefined")
    version = params.get("version", "1.3.0")
    crs = (params.get("crs") or params.get("srs") or "").upper()
    if crs not in SUPPORTED_CRS:
        raise WmsError(f"CRS {crs[:40]!r} not supported; use one of {SUPPORTED_CRS}", "InvalidCRS")
    try:
        raw = params.get("bbox", "").split(",")
        if len(raw) != 4:
            raise RequestError(f"BBOX needs 4 numbers, got {len(raw)}")
        bbox = [check_number(x, "BBOX value") for x in raw]
        width, height = check_image_size(params.get("width", "0"), params.get("height", "0"))
        if crs == "EPSG:4326" and version.startswith("1.3"):
            bbox = [bbox[1], bbox[0], bbox[3], bbox[2]]  # lat/lon axis order of 1.3.0
        box = check_bbox(bbox, crs)
        elevation = params.get("elevation")
        depth = check_number(elevation, "ELEVATION") if elevation else None
        time = params.get("time") or None
        if time:
            parse_time(time, "TIME")
    except RequestError as exc:
        hint = " (WMS 1.3.0 EPSG:4326 is minlat,minlon,maxlat,maxlon)" if crs == "EPSG:4326" else ""
        raise WmsError(f"{exc}{hint}") from None
    fmt = params.get("format", "image/png").lower()
    if fmt not in ("image/png", "png"):
        raise WmsError(f"FORMAT {fmt[:40]!r} not offered; use image/png", "InvalidFormat")
    return MapRequest(
        dataset_id=dataset_id,
        variable=variable,
        bbox=box,
        crs="EPSG:4326" if crs == "CRS:84" else crs,
        width=width,
        height=height,
        time=time,
        elevation=depth,
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
                except RequestError as exc:
                    raise WmsError(str(exc)) from None
                except KeyError as exc:
                    raise WmsError(f"no such variable or time: {exc}", "LayerNotDefined") from None
                return Response(png, media_type="image/png")
            if req in ("getfeatureinfo", "getlegendgraphic"):
                return extra_request(storage, req, params)
            raise WmsError(
                f"REQUEST {params.get('request')!r} not supported; use GetCapabilities, GetMap, "
                "GetFeatureInfo or GetLegendGraphic",
                "OperationNotSupported",
            )
        except WmsError as exc:
            log.info("WMS request refused: %s", exc)
            return service_exception(str(exc), exc.code)

    return router


def extra_request(storage: Storage, req: str, params: dict[str, str]) -> Response:
    """GetFeatureInfo and GetLegendGraphic (tiles.featureinfo), errors as WMS exceptions."""
    try:
        if req == "getlegendgraphic":
            width, height = check_image_size(params.get("width", "256"), params.get("height", "16"))
            layer = params.get("layer") or params.get("layers", "")
            return Response(legend_png(storage, layer, width, height), media_type="image/png")
        query = {**params, "format": "image/png"}
        query["layers"] = params.get("query_layers") or params.get("layers", "")
        map_request = parse_getmap(query)
        body, media = feature_info(storage, map_request, params, params.get("version", "1.3.0"))
        return Response(body, media_type=media)
    except NotFound as exc:
        raise WmsError(str(exc), "LayerNotDefined") from None
    except RequestError as exc:
        raise WmsError(str(exc)) from None


__all__ = ["WmsError", "capabilities", "parse_getmap", "wms_router"]
