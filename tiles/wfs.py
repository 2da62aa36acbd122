"""WFS 2.0.0 over the GIS layers (`/wfs`), so QGIS, ArcGIS and OWSLib's WebFeatureService
read them as they read GeoServer's: GetCapabilities, DescribeFeatureType (XML Schema),
GetFeature with TYPENAMES, BBOX, COUNT and STARTINDEX, as GeoJSON or GML 3.2.

Axis order follows the standard: a BBOX in `urn:ogc:def:crs:EPSG::4326` (the default CRS) is
latitude first; with `CRS84` (or `EPSG:4326` written the short way) it is longitude first.
GML is written in CRS84 (longitude first), which every GML reader takes as written.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
from fastapi import APIRouter, Request, Response
from shapely.geometry.base import BaseGeometry

from lake.errors import RequestError
from lake.layers import LayerInfo, layer_info, list_layers, read_layer, to_geojson
from lake.names import check_dataset_id
from lake.storage import Storage

NS = "coastlake"
NS_URI = "https://coastlake.org/wfs"
GML = "application/gml+xml; version=3.2"
GEOJSON = "application/json"
DEFAULT_CRS = "urn:ogc:def:crs:EPSG::4326"
CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
MAX_COUNT = 10_000
#: Names of WGS 84 a client may ask the features in (all answered the same way).
WGS84_NAMES = frozenset(
    n.lower()
    for n in (
        DEFAULT_CRS,
        CRS84,
        "EPSG:4326",
        "CRS:84",
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    )
)
_XSD_TYPES = {"i": "xsd:long", "u": "xsd:long", "f": "xsd:double", "b": "xsd:boolean"}


def _operation(name: str, href: str) -> str:
    return (
        f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP>'
        f"<ows:Get xlink:href={quoteattr(href)}/></ows:HTTP></ows:DCP></ows:Operation>"
    )


def capabilities(storage: Storage, href: str) -> str:
    types = []
    for info in list_layers(storage):
        w, s, e, n = info.bbox
        types.append(
            f"<FeatureType><Name>{NS}:{escape(info.layer_id)}</Name>"
            f"<Title>{escape(info.title)}</Title>"
            f"<DefaultCRS>{DEFAULT_CRS}</DefaultCRS><OtherCRS>{CRS84}</OtherCRS>"
            f"<OutputFormats><Format>{GML}</Format><Format>{GEOJSON}</Format></OutputFormats>"
            "<ows:WGS84BoundingBox>"
            f"<ows:LowerCorner>{w} {s}</ows:LowerCorner><ows:UpperCorner>{e} {n}</ows:UpperCorner>"
            "</ows:WGS84BoundingBox></FeatureType>"
        )
    ops = "".join(
        _operation(o, href) for o in ("GetCapabilities", "DescribeFeatureType", "GetFeature")
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<wfs:WFS_Capabilities version="2.0.0" xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'xmlns="http://www.opengis.net/wfs/2.0" xmlns:{NS}="{NS_URI}">'
        "<ows:ServiceIdentification><ows:Title>coastlake GIS layers</ows:Title>"
        "<ows:ServiceType>WFS</ows:ServiceType>"
        "<ows:ServiceTypeVersion>2.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>"
        f"<ows:OperationsMetadata>{ops}"
        '<ows:Constraint name="ImplementsBasicWFS"><ows:NoValues/>'
        "<ows:DefaultValue>TRUE</ows:DefaultValue></ows:Constraint>"
        "</ows:OperationsMetadata>"
        f"<FeatureTypeList>{''.join(types)}</FeatureTypeList>"
        "</wfs:WFS_Capabilities>"
    )


def _layer_id(typename: str) -> str:
    layer_id = typename.split(":", 1)[-1]
    check_dataset_id(layer_id)
    return layer_id


def _columns(storage: Storage, info: LayerInfo) -> dict[str, str]:
    sample = read_layer(storage, info.layer_id, limit=1)
    return {
        str(c): _XSD_TYPES.get(sample[c].dtype.kind, "xsd:string")
        for c in sample.columns
        if c != sample.geometry.name
    }


def describe(storage: Storage, typenames: list[str]) -> str:
    elements = []
    for typename in typenames:
        info = layer_info(storage, _layer_id(typename))
        props = "".join(
            f'<xsd:element name={quoteattr(name)} type="{kind}" minOccurs="0" nillable="true"/>'
            for name, kind in _columns(storage, info).items()
        )
        name = escape(info.layer_id)
        elements.append(
            f'<xsd:complexType name="{name}Type"><xsd:complexContent>'
            '<xsd:extension base="gml:AbstractFeatureType"><xsd:sequence>'
            '<xsd:element name="geometry" type="gml:GeometryPropertyType" nillable="true"/>'
            f"{props}</xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>"
            f'<xsd:element name="{name}" type="{NS}:{name}Type" '
            'substitutionGroup="gml:AbstractFeature"/>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:{NS}="{NS_URI}" '
        f'targetNamespace="{NS_URI}" elementFormDefault="qualified">'
        '<xsd:import namespace="http://www.opengis.net/gml/3.2" '
        'schemaLocation="http://schemas.opengis.net/gml/3.2.1/gml.xsd"/>'
        f"{''.join(elements)}</xsd:schema>"
    )


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """A WFS BBOX as lon/lat (west, south, east, north), axis order by its CRS."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 5):
        raise RequestError(f"BBOX needs 4 numbers and an optional CRS, got {text[:80]!r}")
    try:
        a, b, c, d = (float(p) for p in parts[:4])
    except ValueError:
        raise RequestError(f"BBOX {text[:80]!r} is not numbers") from None
    crs = parts[4] if len(parts) == 5 else DEFAULT_CRS
    lat_first = crs.lower() in (DEFAULT_CRS.lower(), "http://www.opengis.net/def/crs/epsg/0/4326")
    west, south, east, north = (b, a, d, c) if lat_first else (a, b, c, d)
    if not (-90 <= south <= north <= 90 and west <= east):
        raise RequestError(f"BBOX {text[:80]!r} is empty or outside the globe")
    return west, south, east, north


def _count(params: dict[str, str]) -> tuple[int, int]:
    try:
        count = int(params.get("count") or params.get("maxfeatures") or MAX_COUNT)
        start = int(params.get("startindex") or 0)
    except ValueError:
        raise RequestError("COUNT and STARTINDEX must be whole numbers") from None
    if not (1 <= count <= MAX_COUNT and start >= 0):
        raise RequestError(f"COUNT must be 1..{MAX_COUNT}, STARTINDEX 0 or more")
    return count, start


def _coords(coords: Any) -> str:
    return " ".join(f"{x} {y}" for x, y, *_ in coords)


def gml_geometry(geom: BaseGeometry, gid: str) -> str:
    """GML 3.2 of a Point, LineString, Polygon or their Multi- forms (CRS84, lon lat)."""
    srs = f'srsName="{CRS84}" gml:id="{gid}"'
    kind = geom.geom_type
    if kind == "Point":
        return f"<gml:Point {srs}><gml:pos>{geom.x} {geom.y}</gml:pos></gml:Point>"
    if kind == "LineString":
        line = _coords(geom.coords)
        return f"<gml:LineString {srs}><gml:posList>{line}</gml:posList></gml:LineString>"
    if kind == "Polygon":
        rings = [
            f"<gml:exterior><gml:LinearRing><gml:posList>{_coords(geom.exterior.coords)}"
            "</gml:posList></gml:LinearRing></gml:exterior>"
        ]
        rings += [
            f"<gml:interior><gml:LinearRing><gml:posList>{_coords(r.coords)}</gml:posList>"
            "</gml:LinearRing></gml:interior>"
            for r in geom.interiors
        ]
        return f"<gml:Polygon {srs}>{''.join(rings)}</gml:Polygon>"
    member = {"MultiPoint": "pointMember", "MultiLineString": "curveMember"}.get(
        kind, "surfaceMember"
    )
    tag = {"MultiPoint": "MultiPoint", "MultiLineString": "MultiCurve"}.get(kind, "MultiSurface")
    parts = "".join(
        f"<gml:{member}>{gml_geometry(g, f'{gid}.{i}')}</gml:{member}>"
        for i, g in enumerate(geom.geoms)
    )
    return f"<gml:{tag} {srs}>{parts}</gml:{tag}>"


def to_gml(gdf: gpd.GeoDataFrame, layer_id: str, matched: int) -> str:
    members = []
    for i, (_, row) in enumerate(gdf.iterrows()):
        fid = f"{layer_id}.{i}"
        props = "".join(
            f"<{NS}:{k}>{escape(str(v))}</{NS}:{k}>"
            for k, v in row.items()
            if k != gdf.geometry.name and v is not None and str(v) != "nan"
        )
        geom = row[gdf.geometry.name]
        shape = f"<{NS}:geometry>{gml_geometry(geom, fid + '.g')}</{NS}:geometry>" if geom else ""
        members.append(
            f'<wfs:member><{NS}:{layer_id} gml:id="{fid}">{shape}{props}</{NS}:{layer_id}>'
            "</wfs:member>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        f'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:{NS}="{NS_URI}" '
        f'numberMatched="{matched}" numberReturned="{len(gdf)}" timeStamp="1970-01-01T00:00:00Z">'
        f"{''.join(members)}</wfs:FeatureCollection>"
    )


def get_feature(storage: Storage, params: dict[str, str]) -> tuple[str, str]:
    typenames = (params.get("typenames") or params.get("typename") or "").split(",")
    if not typenames[0]:
        raise RequestError("GetFeature needs TYPENAMES (coastlake:<layer>)")
    if len(typenames) > 1:
        raise RequestError("ask for one feature type at a time")
    layer_id = _layer_id(typenames[0])
    srs = params.get("srsname", DEFAULT_CRS)
    if srs.lower() not in WGS84_NAMES:
        raise RequestError(f"SRSNAME {srs[:60]!r} not offered; the layers are in {DEFAULT_CRS}")
    bbox = parse_bbox(params["bbox"]) if params.get("bbox") else None
    count, start = _count(params)
    every = read_layer(storage, layer_id, bbox=bbox)
    if params.get("resulttype", "").lower() == "hits":  # how many, no features (QGIS asks)
        return to_gml(every.iloc[:0], layer_id, len(every)), GML
    page = every.iloc[start : start + count]
    fmt = (params.get("outputformat") or GML).lower()
    if fmt in ("application/json", "json", "geojson", "application/geo+json"):
        doc = to_geojson(page)
        doc.update(numberMatched=len(every), numberReturned=len(page))
        return json.dumps(doc), GEOJSON
    if "gml" in fmt:
        return to_gml(page, layer_id, len(every)), GML
    raise RequestError(f"OUTPUTFORMAT {fmt[:40]!r} not offered; use {GML} or {GEOJSON}")


def wfs_router(storage: Storage) -> APIRouter:
    router = APIRouter()

    @router.get("", summary="WFS 2.0.0: GetCapabilities, DescribeFeatureType, GetFeature")
    def wfs(request: Request) -> Response:
        params = {k.lower(): v for k, v in request.query_params.items()}
        req = params.get("request", "").lower()
        if req == "getcapabilities":
            href = str(request.url).split("?", 1)[0]
            return Response(capabilities(storage, href), media_type="application/xml")
        if req == "describefeaturetype":
            names = params.get("typenames") or params.get("typename") or ""
            if not names:
                names = ",".join(f"{NS}:{i.layer_id}" for i in list_layers(storage))
            schema = describe(storage, names.split(","))
            return Response(schema, media_type="application/xml")
        if req == "getfeature":
            body, media = get_feature(storage, params)
            return Response(body, media_type=media)
        raise RequestError(
            "REQUEST must be GetCapabilities, DescribeFeatureType or GetFeature", status=400
        )

    return router


__all__ = ["wfs_router"]
