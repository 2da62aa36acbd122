"""WMS GetFeatureInfo (the value under a clicked pixel) and GetLegendGraphic (a layer's
colour bar), the two requests a web map or QGIS sends besides GetMap.

GetFeatureInfo takes the GetMap parameters plus the pixel (`I`/`J` in 1.3.0, `X`/`Y` in
1.1.1); the value is the grid cell nearest the pixel's centre at the requested (else
newest) time, as ncWMS answers, in JSON (a GeoJSON FeatureCollection) or plain text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer
from rio_tiler.colormap import cmap
from rio_tiler.utils import render

from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from lake.names import check_dataset_id
from lake.storage import Storage
from tiles.render import MapRequest
from tiles.styles import style_for

INFO_FORMATS = ("application/json", "text/plain")
_TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


def _pixel(params: dict[str, str], version: str) -> tuple[int, int]:
    keys = ("i", "j") if version.startswith("1.3") else ("x", "y")
    try:
        return int(params[keys[0]]), int(params[keys[1]])
    except (KeyError, ValueError):
        raise RequestError(
            f"GetFeatureInfo needs the pixel as whole numbers {keys[0].upper()} and "
            f"{keys[1].upper()}"
        ) from None


def clicked_point(req: MapRequest, i: int, j: int) -> tuple[float, float]:
    """Longitude and latitude of the centre of pixel (i, j) of the map `req` draws."""
    if req.bbox is None:
        raise RequestError("GetFeatureInfo needs BBOX")
    if not (0 <= i < req.width and 0 <= j < req.height):
        raise RequestError(f"pixel {i},{j} is outside the {req.width}x{req.height} map")
    minx, miny, maxx, maxy = req.bbox
    x = minx + (i + 0.5) * (maxx - minx) / req.width
    y = maxy - (j + 0.5) * (maxy - miny) / req.height
    if req.crs == "EPSG:3857":
        x, y = _TO_LONLAT.transform(x, y)
    return float(x), float(y)


def _axis(ds: xr.Dataset, names: tuple[str, ...]) -> str:
    for n in names:
        if n in ds.coords:
            return n
    raise NotFound("the grid has no latitude/longitude axes")


def value_at(storage: Storage, req: MapRequest, lon: float, lat: float) -> dict[str, Any]:
    """The variable's value in the cell nearest (lon, lat), with the cell and time used."""
    ds = GridStore(storage, req.dataset_id).open()
    if req.variable not in ds.data_vars:
        raise NotFound(f"grid {req.dataset_id} has no variable {req.variable!r}")
    da = ds[req.variable]
    lat_name, lon_name = _axis(ds, ("lat", "latitude")), _axis(ds, ("lon", "longitude"))
    if float(ds[lon_name].max()) > 180 and lon < 0:
        lon += 360  # a 0..360 grid
    when = None
    if "time" in da.dims:
        if req.time:
            stamp = pd.Timestamp(req.time)
            stamp = stamp.tz_convert(None) if stamp.tzinfo else stamp
            da = da.sel(time=stamp.to_datetime64(), method="nearest")
        else:
            da = da.isel(time=-1)
        when = pd.Timestamp(da["time"].values).strftime("%Y-%m-%dT%H:%M:%SZ")
    for dim in [d for d in da.dims if d not in (lat_name, lon_name)]:
        da = da.isel({dim: 0})  # surface / first level
    lats, lons = ds[lat_name].values, ds[lon_name].values
    step_lat = float(np.abs(np.diff(lats)).max()) if lats.size > 1 else 0.0
    step_lon = float(np.abs(np.diff(lons)).max()) if lons.size > 1 else 0.0
    inside = (
        lats.min() - step_lat / 2 <= lat <= lats.max() + step_lat / 2
        and lons.min() - step_lon / 2 <= lon <= lons.max() + step_lon / 2
    )
    value: float | None = None
    cell: tuple[float, float] | None = None
    if inside:
        point = da.sel({lat_name: lat, lon_name: lon}, method="nearest")
        number = float(point.values)
        value = None if math.isnan(number) else number
        cell = (float(point[lon_name]), float(point[lat_name]))
    return {
        "layer": f"{req.dataset_id}:{req.variable}",
        "variable": req.variable,
        "standard_name": da.attrs.get("standard_name"),
        "units": da.attrs.get("units"),
        "time": when,
        "value": value,
        "grid_lon": cell[0] if cell else None,
        "grid_lat": cell[1] if cell else None,
    }


def feature_info(
    storage: Storage, req: MapRequest, params: dict[str, str], version: str
) -> tuple[str, str]:
    """The body and media type of a GetFeatureInfo answer."""
    i, j = _pixel(params, version)
    fmt = params.get("info_format", "text/plain").lower()
    if fmt not in INFO_FORMATS:
        raise RequestError(f"INFO_FORMAT {fmt[:40]!r} not offered; use one of {INFO_FORMATS}")
    lon, lat = clicked_point(req, i, j)
    info = value_at(storage, req, lon, lat)
    if fmt == "application/json":
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": info,
        }
        return json.dumps({"type": "FeatureCollection", "features": [feature]}), fmt
    lines = [f"{k} = {'' if v is None else v}" for k, v in info.items()]
    return "\n".join([f"lon = {lon:.6f}", f"lat = {lat:.6f}", *lines]) + "\n", fmt


def legend_png(storage: Storage, layer: str, width: int, height: int) -> bytes:
    """A colour bar of the layer's style, low values left (or bottom when taller than wide)."""
    dataset_id, _, variable = layer.partition(":")
    check_dataset_id(dataset_id)
    ds = GridStore(storage, dataset_id).open()
    if variable not in ds.data_vars:
        raise NotFound(f"no layer {layer!r}")
    colours = cmap.get(style_for(ds[variable]).colormap)
    ramp = np.linspace(0, 255, max(width, height)).round().astype(int)
    rgba = np.array([colours[int(k)] for k in ramp], dtype=np.uint8)  # (n, 4)
    if width >= height:
        image = np.broadcast_to(rgba[None, :, :], (height, width, 4))
    else:
        image = np.broadcast_to(rgba[::-1][:, None, :], (height, width, 4))
    data = np.ascontiguousarray(np.moveaxis(image[:, :, :3], -1, 0))
    return bytes(render(data, img_format="PNG"))
