"""ROMS output on its curvilinear grid, made servable: velocities to rho points, rotated to
east/north, and interpolated onto a regular latitude/longitude grid.

Tiles, WMS and EDR need 1-D latitude/longitude. ROMS keeps u on u-points and v on v-points
along the grid's own axes (rotated by `angle` from east). This module averages u and v to the
rho points, rotates them to eastward/northward (u·cosθ − v·sinθ, u·sinθ + v·cosθ), masks land
(`mask_rho`), then interpolates linearly (scipy `griddata`) onto a regular grid at the model's
own median spacing. Points outside the model domain or over land stay NaN. Opt in per stream
with `source.regrid: true`; without it the ingest refuses the file and says so.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from lake.errors import ParseError

log = logging.getLogger(__name__)

ROMS_NEEDS = ("lat_rho", "lon_rho", "angle", "mask_rho")


def is_roms(ds: xr.Dataset) -> bool:
    return all(name in ds.variables for name in ROMS_NEEDS)


def _time_dim(ds: xr.Dataset) -> str | None:
    return next((str(d) for d in ds.dims if str(d) in ("ocean_time", "time")), None)


def velocity_at_rho(ds: xr.Dataset, u_name: str, v_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eastward and northward velocity on rho points, (time, eta_rho, xi_rho), NaN on land
    and on the outer ring of rho points (where u or v has only one neighbour)."""
    u = np.asarray(ds[u_name].values, dtype="float64")  # (t, eta_u, xi_u) = (t, eta, xi-1)
    v = np.asarray(ds[v_name].values, dtype="float64")  # (t, eta_v, xi_v) = (t, eta-1, xi)
    nt = u.shape[0]
    eta, xi = ds["lat_rho"].shape
    u_rho = np.full((nt, eta, xi), np.nan)
    v_rho = np.full((nt, eta, xi), np.nan)
    u_rho[:, :, 1:-1] = 0.5 * (u[:, :, :-1] + u[:, :, 1:])
    v_rho[:, 1:-1, :] = 0.5 * (v[:, :-1, :] + v[:, 1:, :])
    angle = np.asarray(ds["angle"].values, dtype="float64")
    cos, sin = np.cos(angle), np.sin(angle)
    east = u_rho * cos - v_rho * sin
    north = u_rho * sin + v_rho * cos
    land = np.asarray(ds["mask_rho"].values) == 0
    east[:, land] = np.nan
    north[:, land] = np.nan
    return east, north


def regrid_roms(stream_id: str, ds: xr.Dataset, url: str = "") -> xr.Dataset:
    """The surface currents of a ROMS file on a regular lat/lon grid (see module docstring)."""
    u_name, v_name, time = _surface_velocity(stream_id, ds, url)
    east, north = velocity_at_rho(ds, u_name, v_name)
    lat2 = np.asarray(ds["lat_rho"].values, dtype="float64")
    lon2 = np.asarray(ds["lon_rho"].values, dtype="float64")
    lon2 = ((lon2 + 180.0) % 360.0) - 180.0
    lats, lons, step = _regular_axes(lat2, lon2)
    glon, glat = np.meshgrid(lons, lats)
    points = np.column_stack([lon2.ravel(), lat2.ravel()])
    keep = _wet_and_inside(points, np.asarray(ds["mask_rho"].values), glon, glat)
    out_e = np.full((east.shape[0], *glat.shape), np.nan, dtype="float32")
    out_n = np.full_like(out_e, np.nan)
    for t in range(east.shape[0]):
        for src, dst in ((east[t], out_e), (north[t], out_n)):
            ok = np.isfinite(src.ravel())
            field = _griddata(points[ok], src.ravel()[ok], (glon, glat), "linear")
            dst[t] = np.where(keep, field, np.nan)
    out = _currents(ds, u_name, v_name, time, out_e, out_n, lats, lons)
    log.info(
        "stream=%s ROMS %s regridded to %d×%d at %.4f°",
        stream_id,
        url,
        len(lats),
        len(lons),
        step,
    )
    return out


def _surface_velocity(stream_id: str, ds: xr.Dataset, url: str) -> tuple[str, str, str]:
    """(u name, v name, time dim) of the surface velocity; ParseError if the file has none
    or its velocity has depth levels."""
    u_name = next((n for n in ("u_sur", "u_surface", "u") if n in ds), None)
    v_name = next((n for n in ("v_sur", "v_surface", "v") if n in ds), None)
    time = _time_dim(ds)
    if u_name is None or v_name is None or time is None:
        raise ParseError(
            source=stream_id,
            url=url or None,
            what="ROMS regridding needs u/v surface velocity (u_sur, v_sur) and ocean_time",
        )
    if ds[u_name].ndim != 3:
        raise ParseError(
            source=stream_id,
            url=url or None,
            what=f"ROMS regridding handles surface fields (time, eta, xi); {u_name} has "
            f"dims {ds[u_name].dims}",
        )
    return u_name, v_name, time


def _regular_axes(lat2: np.ndarray, lon2: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(latitudes, longitudes, step in degrees) covering the model grid at its own median
    spacing, so regridding neither invents detail nor throws it away."""
    dlat = float(np.median(np.abs(np.diff(lat2, axis=0))))
    dlon = float(np.median(np.abs(np.diff(lon2, axis=1))))
    step = max(min(dlat, dlon), 1e-4)
    lats = np.arange(lat2.min(), lat2.max() + step / 2, step)
    lons = np.arange(lon2.min(), lon2.max() + step / 2, step)
    return lats, lons, step


def _griddata(
    points: np.ndarray, values: np.ndarray, at: tuple[np.ndarray, np.ndarray], method: str
) -> np.ndarray:
    """scipy's `griddata`, imported when first used: scipy.interpolate takes about a second
    to import, and every harvest run would pay it though only ROMS grids need it."""
    from scipy.interpolate import griddata

    return np.asarray(griddata(points, values, at, method=method))


def _wet_and_inside(
    points: np.ndarray, mask_rho: np.ndarray, glon: np.ndarray, glat: np.ndarray
) -> np.ndarray:
    """Regular-grid cells nearest to water and inside the model domain (the rest stay NaN)."""
    water = mask_rho.ravel().astype("float64")
    wet = _griddata(points, water, (glon, glat), "nearest")
    inside = ~np.isnan(_griddata(points, water, (glon, glat), "linear"))
    return np.asarray((wet > 0.5) & inside)


def _currents(
    ds: xr.Dataset,
    u_name: str,
    v_name: str,
    time: str,
    east: np.ndarray,
    north: np.ndarray,
    lats: np.ndarray,
    lons: np.ndarray,
) -> xr.Dataset:
    """The regridded currents as a CF dataset, saying in each variable how it was made."""
    units = ds[u_name].attrs.get("units", "m s-1")
    note = (
        f"regridded by coastlake from the ROMS curvilinear grid: {u_name}/{v_name} averaged "
        "to rho points, rotated by angle to east/north, linear interpolation (scipy griddata)"
    )
    return xr.Dataset(
        {
            "u_east": (
                ("time", "lat", "lon"),
                east,
                {
                    "standard_name": "surface_eastward_sea_water_velocity",
                    "long_name": "surface eastward current",
                    "units": units,
                    "comment": note,
                },
            ),
            "v_north": (
                ("time", "lat", "lon"),
                north,
                {
                    "standard_name": "surface_northward_sea_water_velocity",
                    "long_name": "surface northward current",
                    "units": units,
                    "comment": note,
                },
            ),
        },
        coords={
            "time": ("time", ds[time].values),
            "lat": ("lat", lats, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lons, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={**ds.attrs, "coastlake_regridded_from": "ROMS curvilinear (lat_rho/lon_rho)"},
    )
