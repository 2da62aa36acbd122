"""The metadata of every NetCDF file the lake writes: CF 1.8, ACDD 1.3, IOOS metadata profile
1.2 and NCEI's templates.

Two kinds of attributes, kept apart on purpose:

- what the registry says about a stream (title, provider, licence, who publishes it):
  `stream_attrs`;
- what the data say (where, when, the range of every variable): computed from the values
  being written by `coverage_attrs` and `actual_range`, never copied from a source's header,
  which describes the source's whole file and not the subset the lake hands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from lake.registry import Category, Provider, Stream

#: The conventions a file follows. NCEI's version 2.0 templates and their checker name
#: "CF-1.6" literally; the files use nothing CF 1.8 added, so they are CF 1.6 files as well.
CONVENTIONS = "CF-1.8, ACDD-1.3, IOOS-1.2"
NCEI_CONVENTIONS = "CF-1.6, CF-1.8, ACDD-1.3, IOOS-1.2"
NCEI_TIMESERIES_TEMPLATE = "NCEI_NetCDF_TimeSeries_Orthogonal_Template_v2.0"
NCEI_GRID_TEMPLATE = "NCEI_NetCDF_Grid_Template_v2.0"
#: The CF standard name table the lake's names are checked against (compliance-checker ships it).
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v79"
PLATFORM_VOCABULARY = "https://mmisw.org/ont/ioos/platform"
QARTOD_MANUALS = "https://ioos.noaa.gov/project/qartod/"

#: QARTOD test -> the CF standard name of its flag (the names IOOS 1.2 lists).
QC_STANDARD_NAMES: dict[str, str] = {
    "agg": "aggregate_quality_flag",
    "syntax": "syntax_test_quality_flag",
    "timing_gap": "gap_test_quality_flag",
    "location": "location_test_quality_flag",
    "gross_range": "gross_range_test_quality_flag",
    "climatology": "climatology_test_quality_flag",
    "spike": "spike_test_quality_flag",
    "rate_of_change": "rate_of_change_test_quality_flag",
    "flat_line": "flat_line_test_quality_flag",
    "neighbor": "neighbor_test_quality_flag",
}

#: Quantities the lake stores as a change over a fixed interval, and their units in a file.
#: WMO and NDBC report the pressure tendency as the change over the last three hours; CF's
#: `tendency_of_air_pressure` is a rate, so the file names the interval in the units and the
#: values stay as stored (udunits reads "Pa/(3 h)" as 1/10800 Pa s-1).
INTERVAL_UNITS: dict[tuple[str, str], str] = {
    ("tendency_of_air_pressure", "Pa"): "Pa/(3 h)",
    ("tendency_of_air_pressure", "hPa"): "hPa/(3 h)",
}

_VERTICAL = {"depth": "down", "height": "up", "altitude": "up"}
#: The IOOS `creator_sector` of a registry category: federal streams come from federal agencies.
_SECTORS = {Category.federal: "gov_federal", Category.model: "gov_federal"}


def file_units(standard_name: str, units: str) -> str:
    """The units a file states for a stored quantity (see INTERVAL_UNITS)."""
    return INTERVAL_UNITS.get((standard_name, units), units)


def naming_authority(url: str | None) -> str:
    """The reverse-DNS naming authority of an organisation's web address."""
    host = urlparse(url or "").hostname or ""
    parts = [p for p in host.split(".") if p and p != "www"]
    return ".".join(reversed(parts))


def _party(role: str, who: Provider, sector: str) -> dict[str, str]:
    return {
        f"{role}_name": who.name,
        f"{role}_institution": who.name,
        f"{role}_type": "institution",
        f"{role}_url": who.url or "",
        f"{role}_email": who.email or "",
        f"{role}_sector": sector,
        # The lake serves a U.S. IOOS region; a provider abroad sets its country in a later field.
        f"{role}_country": "USA",
    }


def stream_attrs(stream: Stream) -> dict[str, str]:
    """The global attributes the registry gives every file made from a stream.

    The creator is the stream's provider; the publisher is the stream's `publisher` (the
    registry's, inherited) or, where none is set, the provider itself.
    """
    publisher = stream.publisher or stream.provider
    sector = _SECTORS.get(stream.category, "unknown")
    attrs = {
        "title": stream.title,
        "summary": stream.summary.strip() or stream.title,
        "id": stream.id,
        "naming_authority": naming_authority(publisher.url or stream.provider.url),
        "institution": stream.provider.name,
        "license": stream.license,
        "references": stream.citation,
        "acknowledgement": stream.citation,
        "keywords": ", ".join(stream.keywords),
        "keywords_vocabulary": "GCMD Science Keywords",
        "infoUrl": stream.provider.url or publisher.url or "",
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        "platform_vocabulary": PLATFORM_VOCABULARY,
        "processing_level": f"{stream.category.value} data; QC: {stream.category.qc_path}",
        **_stream_platform(stream),
        **_party("creator", stream.provider, sector),
        **_party("publisher", publisher, "unknown" if stream.publisher else sector),
    }
    return {k: v for k, v in attrs.items() if v}


def platform_attrs(platform: str | None, name: str | None, station_id: str) -> dict[str, str]:
    """IOOS platform attributes of one station: a blank-free platform type, its name and id."""
    kind = "_".join((platform or "").split()) or "unknown"
    code = station_id.rsplit(":", 1)[-1]
    return {
        "platform": kind,
        "platform_name": name or code,
        "platform_id": "".join(ch for ch in code if ch.isalnum()),
    }


def _stream_platform(stream: Stream) -> dict[str, str]:
    """The platform the registry names for a stream: its station's, when it has one, or its
    stations' common type; a stream with none (a grid, a model) says "unknown" rather than
    guess. A file of one station overrides it with `platform_attrs`."""
    params = stream.source.params
    listed = params.get("stations") or ([params["station"]] if params.get("station") else [])
    stations = [s for s in listed if isinstance(s, dict)]
    kinds = {str(s.get("platform") or "") for s in stations}
    if len(listed) == 1 and stations:
        one = stations[0]
        return platform_attrs(one.get("platform"), one.get("name"), str(one.get("id", "")))
    kind = kinds.pop() if len(kinds) == 1 else ""
    return {"platform": "_".join(kind.split()) or "unknown", "platform_name": stream.title}


def _iso_duration(span: pd.Timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{seconds}S"


def _finite(values: Any) -> npt.NDArray[np.float64]:
    data: npt.NDArray[np.float64] = np.asarray(values, dtype="float64").ravel()
    finite: npt.NDArray[np.float64] = data[np.isfinite(data)]
    return finite


def _bounds(ds: xr.Dataset, standard_name: str) -> tuple[float, float] | None:
    for var in ds.variables.values():
        if var.attrs.get("standard_name") == standard_name and var.dtype.kind in "fiu":
            data = _finite(var.values)
            if data.size:
                return float(data.min()), float(data.max())
    return None


def coverage_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """Where and when the values of `ds` are, from the values themselves (ACDD geospatial
    and time coverage); longitudes as stored (the lake stores -180..180)."""
    out: dict[str, Any] = {}
    for axis, name, units in (
        ("lat", "latitude", "degrees_north"),
        ("lon", "longitude", "degrees_east"),
    ):
        found = _bounds(ds, name)
        if found:
            out[f"geospatial_{axis}_min"], out[f"geospatial_{axis}_max"] = found
            out[f"geospatial_{axis}_units"] = units
    for name in ("height", "altitude", "depth"):
        found = _bounds(ds, name)
        if found:
            low, high = found
            if name == "depth":
                low, high = -high, -low
            out["geospatial_vertical_min"], out["geospatial_vertical_max"] = low, high
            out["geospatial_vertical_units"] = "m"
            out["geospatial_vertical_positive"] = "up"
            break
    times = [v for v in ds.variables.values() if v.dtype.kind == "M"]
    if times:
        stamps = pd.to_datetime(np.asarray(times[0].values).ravel())
        stamps = stamps[~pd.isna(stamps)]
        if len(stamps):
            start, end = stamps.min(), stamps.max()
            out["time_coverage_start"] = start.isoformat() + "Z"
            out["time_coverage_end"] = end.isoformat() + "Z"
            out["time_coverage_duration"] = _iso_duration(end - start)
            steps = np.diff(np.unique(stamps.to_numpy()))
            if steps.size:
                out["time_coverage_resolution"] = _iso_duration(pd.Timedelta(np.median(steps)))
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    out["date_created"] = now
    out["date_modified"] = now
    out["date_issued"] = now
    return out


def actual_range(var: xr.Variable) -> npt.NDArray[Any] | None:
    """[min, max] of a numeric variable's values (None if it has none), in its own type."""
    if var.dtype.kind not in "fiu":
        return None
    data = np.asarray(var.values).ravel()
    fill = var.encoding.get("_FillValue", var.attrs.get("_FillValue"))
    if var.dtype.kind == "f":
        data = data[np.isfinite(data)]
    if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
        data = data[data != fill]
    if not data.size:
        return None
    return np.array([data.min(), data.max()], dtype=var.dtype)


def describe_variables(ds: xr.Dataset) -> None:
    """Give every variable what CF, ACDD and IOOS ask of it, in place: a long name, the
    ACDD coverage content type, its actual range from the values; stale source ranges go."""
    for name, var in ds.variables.items():
        attrs = var.attrs
        standard = str(attrs.get("standard_name", ""))
        attrs.setdefault("long_name", (standard or str(name)).replace("_", " "))
        if "flag_values" in attrs or "flag_meanings" in attrs:
            attrs.setdefault("coverage_content_type", "qualityInformation")
            continue
        attrs.pop("actual_range", None)
        var.encoding.pop("actual_range", None)
        if name in ds.coords or standard in ("time", "latitude", "longitude", "height"):
            attrs.setdefault("coverage_content_type", "coordinate")
        elif var.dtype.kind in "fiu":
            attrs.setdefault("coverage_content_type", "physicalMeasurement")
        if standard and "units" in attrs:
            attrs["units"] = file_units(standard, str(attrs["units"]))
        if standard in _VERTICAL:
            # CF reads these names as vertical coordinates even when they are measured values
            # (a water-quality sonde's depth), and a vertical coordinate says which way is up.
            attrs.setdefault("positive", _VERTICAL[standard])
        found = actual_range(var)
        if found is not None and var.dtype.kind != "M":
            attrs["actual_range"] = found


def finish(ds: xr.Dataset, attrs: Mapping[str, Any]) -> xr.Dataset:
    """Variable attributes, then the computed coverage, then the caller's global attributes
    (the caller's never override what the data say); empty values are left out."""
    describe_variables(ds)
    out = dict(ds.attrs)
    out.update({k: v for k, v in attrs.items() if v is not None and v != ""})
    out.update(coverage_attrs(ds))
    names = sorted(
        {str(v.attrs["standard_name"]) for v in ds.data_vars.values() if "standard_name" in v.attrs}
        - set(QC_STANDARD_NAMES.values())
    )
    if not out.get("keywords") and names:
        out["keywords"] = ", ".join(names)
    ds.attrs = out
    return ds
