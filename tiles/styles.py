"""How each CF variable is drawn: a colormap and a default value range.

Clients may pass `colormap_name` and `rescale` themselves; without them a layer still looks
right because the style follows the variable's CF standard name (cmocean maps, as ocean
scientists expect). Unknown names fall back to the variable's own `colorBarMinimum/Maximum`
(ERDDAP), `valid_min/valid_max`, then viridis over the data's 2–98 % range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class Style:
    """A colormap name (rio-tiler's list) and the value range mapped onto it."""

    colormap: str
    vmin: float
    vmax: float

    @property
    def rescale(self) -> str:
        return f"{self.vmin:g},{self.vmax:g}"


#: Styles by CF standard name; units are the lake's canonical ones.
STYLES: dict[str, Style] = {
    "sea_surface_temperature": Style("thermal", 0.0, 32.0),
    "sea_water_temperature": Style("thermal", 0.0, 32.0),
    "sea_surface_temperature_anomaly": Style("balance", -5.0, 5.0),
    "sea_water_salinity": Style("haline", 28.0, 37.0),
    "sea_water_practical_salinity": Style("haline", 28.0, 37.0),
    "sea_water_speed": Style("speed", 0.0, 1.0),
    "direction_of_sea_water_velocity": Style("phase", 0.0, 360.0),
    "surface_eastward_sea_water_velocity": Style("balance", -1.0, 1.0),
    "surface_northward_sea_water_velocity": Style("balance", -1.0, 1.0),
    "eastward_sea_water_velocity": Style("balance", -1.0, 1.0),
    "northward_sea_water_velocity": Style("balance", -1.0, 1.0),
    "sea_surface_height_above_geoid": Style("balance", -2.0, 2.0),
    "sea_surface_height": Style("balance", -2.0, 2.0),
    "mass_concentration_of_chlorophyll_a_in_sea_water": Style("algae", 0.0, 10.0),
    "sea_surface_wave_significant_height": Style("amp", 0.0, 8.0),
}
FALLBACK_COLORMAP = "viridis"


def style_for(da: xr.DataArray) -> Style:
    """The style of a variable: by standard name, then its own attributes, then its data."""
    name = str(da.attrs.get("standard_name", ""))
    if name in STYLES:
        return STYLES[name]
    if "anomaly" in name.lower() or "anomaly" in str(da.attrs.get("long_name", "")).lower():
        return STYLES["sea_surface_temperature_anomaly"]
    for lo, hi in (("colorBarMinimum", "colorBarMaximum"), ("valid_min", "valid_max")):
        if lo in da.attrs and hi in da.attrs:
            return Style(FALLBACK_COLORMAP, float(da.attrs[lo]), float(da.attrs[hi]))
    if "valid_range" in da.attrs:
        lo_v, hi_v = (float(x) for x in np.asarray(da.attrs["valid_range"])[:2])
        return Style(FALLBACK_COLORMAP, lo_v, hi_v)
    sample = da
    for dim in da.dims:
        if da.sizes[dim] > 64:
            sample = sample.isel({dim: slice(None, None, max(1, da.sizes[dim] // 64))})
    values = np.asarray(sample.values, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Style(FALLBACK_COLORMAP, 0.0, 1.0)
    lo_p, hi_p = np.percentile(values, [2, 98])
    if hi_p <= lo_p:
        hi_p = lo_p + 1.0
    return Style(FALLBACK_COLORMAP, float(lo_p), float(hi_p))
