"""Checks every raster request passes before any GDAL, PROJ or rasterio call: coordinates
finite and inside the domain of their reference system, images no larger than one cap, tile
indices that exist, and only reference systems the services offer.

GDAL computes the bounds of a reprojection by densifying the box's edges; for a box of
±1e308 it spins for minutes holding the GIL, so nothing else in the server answers. These
checks are cheap arithmetic done first, and every raster route (WMS GetMap, the TiTiler
routes, previews) goes through them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from fastapi import Request

from lake.errors import RequestError

#: Longest side of any image the map services draw, in pixels (WMS advertises the same).
MAX_IMAGE_SIDE = 4096
#: Deepest zoom of a tile index (WebMercatorQuad defines 24; a little slack for others).
MAX_ZOOM = 30
#: Half the width of the Web Mercator plane, in metres.
MERCATOR_HALF = 20037508.342789244
#: Reference systems clients may name (coord_crs, dst_crs, WMS CRS) and their domains as
#: (min x, min y, max x, max y). Longitudes to 360 so 0..360 grids can be asked in their own
#: convention.
CRS_DOMAINS: dict[str, tuple[float, float, float, float]] = {
    "EPSG:4326": (-360.0, -90.0, 360.0, 90.0),
    "CRS:84": (-360.0, -90.0, 360.0, 90.0),
    "OGC:CRS84": (-360.0, -90.0, 360.0, 90.0),
    "EPSG:3857": (-MERCATOR_HALF, -MERCATOR_HALF * 1.001, MERCATOR_HALF, MERCATOR_HALF * 1.001),
}
#: Query parameters that set an image's size in pixels.
SIZE_PARAMS = ("width", "height", "max_size", "tilesize")


def crs_name(crs: str) -> str:
    """The canonical name of an offered reference system; RequestError for any other."""
    name = crs.strip().upper()
    if name.startswith("HTTP://WWW.OPENGIS.NET/DEF/CRS/EPSG/0/"):
        name = "EPSG:" + name.rsplit("/", 1)[1]
    elif name.startswith("HTTP://WWW.OPENGIS.NET/DEF/CRS/OGC/1.3/CRS84"):
        name = "OGC:CRS84"
    if name not in CRS_DOMAINS:
        raise RequestError(
            f"reference system {crs[:40]!r} is not offered; use one of {', '.join(CRS_DOMAINS)}"
        )
    return name


def check_number(text: str | float, name: str) -> float:
    """`text` as a finite number; RequestError naming `name` otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise RequestError(f"{name} {str(text)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise RequestError(f"{name} {str(text)[:40]!r} is not a finite number")
    return value


def check_point(x: float, y: float, crs: str = "EPSG:4326", name: str = "point") -> None:
    """A position inside the domain of `crs`."""
    x0, y0, x1, y1 = CRS_DOMAINS[crs_name(crs)]
    check_number(x, f"{name} x")
    check_number(y, f"{name} y")
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        raise RequestError(
            f"{name} ({x:g}, {y:g}) is outside {crs} (x {x0:g}..{x1:g}, y {y0:g}..{y1:g})"
        )


def check_bbox(
    bbox: tuple[float, float, float, float] | list[float], crs: str = "EPSG:4326"
) -> tuple[float, float, float, float]:
    """A box `minx, miny, maxx, maxy` of finite numbers, inside `crs`'s domain, min < max."""
    if len(bbox) != 4:
        raise RequestError(f"bbox needs 4 numbers (minx,miny,maxx,maxy), got {len(bbox)}")
    minx, miny, maxx, maxy = (check_number(v, "bbox value") for v in bbox)
    check_point(minx, miny, crs, "bbox corner")
    check_point(maxx, maxy, crs, "bbox corner")
    if not (minx < maxx and miny < maxy):
        raise RequestError(
            f"bbox {minx:g},{miny:g},{maxx:g},{maxy:g} is empty or inverted: "
            "give minx,miny,maxx,maxy with min < max"
        )
    return minx, miny, maxx, maxy


def check_image_size(width: int | str, height: int | str) -> tuple[int, int]:
    """Width and height as whole numbers of pixels, 1..MAX_IMAGE_SIDE each."""
    return check_side(width, "width"), check_side(height, "height")


def check_side(value: int | str, name: str) -> int:
    """One image dimension, 1..MAX_IMAGE_SIDE pixels."""
    try:
        pixels = int(value)
    except (TypeError, ValueError):
        raise RequestError(f"{name} {str(value)[:40]!r} is not a whole number of pixels") from None
    if not 0 < pixels <= MAX_IMAGE_SIDE:
        raise RequestError(f"{name} {pixels} is outside 1..{MAX_IMAGE_SIDE} pixels", status=400)
    return pixels


def check_tile(z: int | str, x: int | str, y: int | str) -> None:
    """A tile index that exists: 0 <= z <= MAX_ZOOM and 0 <= x, y < 2**z."""
    try:
        zi, xi, yi = int(z), int(x), int(y)
    except (TypeError, ValueError):
        raise RequestError(f"tile {z}/{x}/{y}: z, x and y must be whole numbers") from None
    if not 0 <= zi <= MAX_ZOOM:
        raise RequestError(f"tile zoom {zi} is outside 0..{MAX_ZOOM}")
    if not (0 <= xi < 2**zi and 0 <= yi < 2**zi):
        raise RequestError(f"tile {zi}/{xi}/{yi} does not exist (x and y are 0..{2**zi - 1})")


def _coordinates(geometry: Any) -> Iterator[Any]:
    """Every position of a GeoJSON object (Feature, FeatureCollection or geometry)."""
    if isinstance(geometry, dict):
        if "coordinates" in geometry:
            stack = [geometry["coordinates"]]
            while stack:
                item = stack.pop()
                if isinstance(item, list) and item and not isinstance(item[0], list):
                    yield item
                elif isinstance(item, list):
                    stack.extend(item)
        for key in ("geometry", "features", "geometries"):
            value = geometry.get(key)
            items = value if isinstance(value, list) else [value]
            for item in items:
                yield from _coordinates(item)


async def check_raster_request(request: Request) -> None:
    """A dependency for every TiTiler route: path coordinates and tile indices, image sizes,
    reference systems and POSTed GeoJSON positions, checked before the route runs."""
    path = request.path_params
    query = request.query_params
    coord_crs = crs_name(query["coord_crs"]) if "coord_crs" in query else "EPSG:4326"
    if "dst_crs" in query:
        crs_name(query["dst_crs"])
    if {"minx", "miny", "maxx", "maxy"} <= path.keys():
        check_bbox([path[k] for k in ("minx", "miny", "maxx", "maxy")], coord_crs)
    if {"lon", "lat"} <= path.keys():
        check_point(check_number(path["lon"], "lon"), check_number(path["lat"], "lat"), coord_crs)
    if {"z", "x", "y"} <= path.keys():
        check_tile(path["z"], path["x"], path["y"])
    for name in SIZE_PARAMS:
        if name in path:
            check_side(path[name], name)
        if name in query:
            check_side(query[name], name)
    if "scale" in query:
        scale = check_number(query["scale"], "scale")
        if not 1 <= scale <= 4:
            raise RequestError(f"scale {scale:g} is outside 1..4")
    if request.method == "POST":
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise RequestError("the request body is not JSON (send a GeoJSON Feature)") from None
        for position in _coordinates(body):
            if len(position) < 2:
                raise RequestError("a GeoJSON position needs two numbers")
            check_point(
                check_number(position[0], "GeoJSON x"),
                check_number(position[1], "GeoJSON y"),
                coord_crs,
                "GeoJSON position",
            )
