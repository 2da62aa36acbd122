"""Source terms to lake terms: CF standard names, canonical units (via pint with the CF unit
registry of cf_xarray), times in UTC, z in metres (positive up), missing codes to nothing."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pint
import pyarrow as pa
import pyarrow.compute as pc

from ingest.base import utc
from lake.errors import ParseError
from lake.registry import Stream

log = logging.getLogger(__name__)

#: The unit every value of a CF standard name is stored in: CF canonical units, except that
#: temperatures are in degrees Celsius (an SI derived unit) because every ocean user reads
#: them so. A name not listed keeps the unit its source gives.
CANONICAL_UNITS: dict[str, str] = {
    "sea_surface_temperature": "degC",
    "sea_water_temperature": "degC",
    "air_temperature": "degC",
    "dew_point_temperature": "degC",
    "wind_speed": "m s-1",
    "wind_speed_of_gust": "m s-1",
    "wind_from_direction": "degree",
    "sea_water_speed": "m s-1",
    "direction_of_sea_water_velocity": "degree",
    "eastward_sea_water_velocity": "m s-1",
    "northward_sea_water_velocity": "m s-1",
    "sea_surface_wave_significant_height": "m",
    "sea_surface_wave_period_at_variance_spectral_density_maximum": "s",
    "sea_surface_wave_mean_period": "s",
    "sea_surface_wave_from_direction_at_variance_spectral_density_maximum": "degree",
    "sea_surface_wave_from_direction": "degree",
    "sea_surface_swell_wave_from_direction": "degree",
    "sea_surface_wind_wave_from_direction": "degree",
    "wind_gust_from_direction": "degree",
    "depth_of_isosurface_of_sea_water_potential_temperature": "m",
    "sea_surface_swell_wave_significant_height": "m",
    "sea_surface_wind_wave_significant_height": "m",
    "sea_surface_swell_wave_period": "s",
    "sea_surface_wind_wave_period": "s",
    "air_pressure_at_mean_sea_level": "Pa",
    "air_pressure": "Pa",
    "tendency_of_air_pressure": "Pa",
    "visibility_in_air": "m",
    "water_surface_height_above_reference_datum": "m",
    "sea_surface_height_above_sea_level": "m",
    "sea_surface_height_amplitude_due_to_geocentric_ocean_tide": "m",
    "sea_water_practical_salinity": "1",
    "sea_water_electrical_conductivity": "S m-1",
    "mass_concentration_of_oxygen_in_sea_water": "kg m-3",
    "fractional_saturation_of_oxygen_in_sea_water": "1",
    "mass_concentration_of_chlorophyll_in_sea_water": "kg m-3",
    "sea_water_turbidity": "1",
    "sea_water_ph_reported_on_total_scale": "1",
    "relative_humidity": "1",
    "surface_downwelling_shortwave_flux_in_air": "W m-2",
    "thickness_of_rainfall_amount": "m",
    "rainfall_rate": "m s-1",
    "depth": "m",
}

#: Spellings sources use that the unit registry does not know, mapped to what it does.
UNIT_ALIASES: dict[str, str] = {
    "degt": "degree",
    "deg": "degree",
    "degrees": "degree",
    "degrees_true": "degree",
    "degree_true": "degree",
    "c": "degC",
    "celsius": "degC",
    "deg c": "degC",
    "degree_c": "degC",
    "f": "degF",
    "fahrenheit": "degF",
    "deg f": "degF",
    "mv": "mV",
    "psu": "1",
    "ppt": "1",
    "-": "1",
    "": "1",
    "ntu": "1",
    "ftu": "1",
    "fnu": "1",
    "mb": "hPa",
    "mbar": "hPa",
    "knots": "kn",
    "mph": "mi/h",
    "mg/l": "mg/L",
    "ug/l": "ug/L",
    "%": "percent",
    "kt": "kn",
    "m/s": "m s-1",
    "cm/s": "cm s-1",
    "ms/cm": "mS/cm",
    "us/cm": "uS/cm",
    "degrees_c": "degC",
    "degree_celsius": "degC",
    "degree_fahrenheit": "degF",
    "meters": "m",
    "feet": "ft",
    "pss-78": "1",
    "pss": "1",
    "us_statute_miles": "survey_mile",  # NDBC's NetCDF visibility
    "us_statute_mile": "survey_mile",
}

#: Quantities without a physical unit whose sources spell the scale in many ways
#: ('1e-3' was CF's old salinity unit, 'PSU', 'PSS-78'): any spelling means the same number.
UNITLESS_SCALES = frozenset({"sea_water_practical_salinity", "sea_water_salinity"})


@lru_cache(maxsize=1)
def unit_registry() -> pint.UnitRegistry:
    # cf_xarray warns that matplotlib is absent and pint logs each unit it redefines for CF;
    # neither says anything a data manager can act on.
    pint_log = logging.getLogger("pint.util")
    level = pint_log.level
    pint_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from cf_xarray.units import units
    finally:
        pint_log.setLevel(level)

    return units  # type: ignore[no-any-return]


def canonical_unit_text(text: str) -> str:
    """The unit string as the registry knows it ('degT' -> 'degree', 'psu' -> '1')."""
    stripped = text.strip()
    return UNIT_ALIASES.get(stripped.lower(), stripped)


def parse_unit(text: str) -> pint.Unit:
    """A pint unit from a source's spelling; ValueError with the spelling if unknown."""
    ureg = unit_registry()
    try:
        return ureg.Unit(canonical_unit_text(text))
    except (
        pint.errors.UndefinedUnitError,
        pint.errors.DefinitionSyntaxError,
        ValueError,
        AttributeError,
        TypeError,
    ) as exc:
        raise ValueError(f"unknown unit {text!r}") from exc


def convert(values: np.ndarray, from_units: str, to_units: str) -> np.ndarray:
    """Values converted between units; ValueError if the units are unknown or incompatible."""
    source, target = parse_unit(from_units), parse_unit(to_units)
    if source == target:
        return values
    ureg = unit_registry()
    try:
        return np.asarray(ureg.Quantity(values, source).to(target).magnitude, dtype="float64")
    except pint.errors.DimensionalityError as exc:
        raise ValueError(f"cannot convert {from_units!r} to {to_units!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class VariableMapping:
    """What a source column is: its CF standard name, the units the source uses, its z."""

    standard_name: str
    units: str | None = None  # None: take the unit the response itself states
    z: float | None = None
    #: Listed in the registry: the column must be in the response, and a unit the response
    #: states must agree with the registry's (a renamed column or a changed unit is a fault).
    required: bool = False


def mappings_for(
    stream: Stream, defaults: Mapping[str, VariableMapping]
) -> dict[str, VariableMapping]:
    """The harvester's default column mapping, overridden and extended by the registry.

    If the registry lists variables, only those are kept: a provider may want fewer.
    """
    if not stream.variables:
        return dict(defaults)
    return {
        v.source: VariableMapping(v.standard_name, v.units, v.z, required=True)
        for v in stream.variables
    }


def normalize(
    stream: Stream,
    rows: pa.Table,
    mapping: Mapping[str, VariableMapping],
    *,
    raw_id: str,
    url: str,
    raw_file: str | None = None,
) -> pa.Table:
    """Source-named long rows to observation rows in CF names and canonical units.

    Rows of source columns the mapping does not name are left out; rows with no value are
    dropped (a missing-value code carries no observation). Raises ParseError naming the
    stream, the URL and the column when a unit is unknown or cannot be converted.
    """
    pieces: list[pa.Table] = []
    present = set(pc.unique(rows.column("variable")).to_pylist())
    absent = [name for name, m in mapping.items() if m.required and name not in present]
    if absent and rows.num_rows:
        raise ParseError(
            source=stream.id,
            url=url,
            file=raw_file,
            what=f"column {absent[0]!r} is not in the response (renamed?); it has "
            f"{sorted(present)}",
        )
    if rows.column("value").null_count:
        rows = rows.filter(pc.is_valid(rows.column("value")))
    if rows.num_rows == 0:
        return _empty(stream, rows)
    for name, part in _by_variable(rows):
        target = mapping.get(name)
        if target is None:
            continue
        source_units = target.units or part.column("units")[0].as_py() or ""
        if target.standard_name in UNITLESS_SCALES:
            source_units = "1"
        stated = part.column("units")[0].as_py() or ""
        if target.required and target.units and stated and stated != target.units:
            _check_stated_unit(stream, url, raw_file, name, stated, target.units)
        out_units = CANONICAL_UNITS.get(target.standard_name, canonical_unit_text(source_units))
        try:
            values = convert(
                part.column("value").to_numpy(zero_copy_only=False), source_units, out_units
            )
        except ValueError as exc:
            raise ParseError(
                source=stream.id, url=url, file=raw_file, what=f"column {name}: {exc}"
            ) from None
        z = part.column("z")
        if target.z is not None:
            z = pa.array(np.full(part.num_rows, target.z))
        part = (
            part.set_column(
                part.schema.get_field_index("variable"),
                "variable",
                pa.repeat(pa.scalar(target.standard_name, pa.string()), part.num_rows),
            )
            .set_column(part.schema.get_field_index("value"), "value", pa.array(values))
            .set_column(
                part.schema.get_field_index("units"),
                "units",
                pa.repeat(pa.scalar(out_units, pa.string()), part.num_rows),
            )
            .set_column(part.schema.get_field_index("z"), "z", _surface_if_unknown(z))
        )
        pieces.append(part)
    if not pieces:
        return _empty(stream, rows)
    table = pa.concat_tables(pieces)
    n = table.num_rows
    return table.append_column(
        "dataset_id", pa.repeat(pa.scalar(stream.id, pa.string()), n)
    ).append_column("raw_id", pa.repeat(pa.scalar(raw_id, pa.string()), n))


def _by_variable(rows: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of each source variable: slices where each variable's rows are together
    (a parser's long rows usually are), else a filter per variable."""
    encoded = pc.dictionary_encode(rows.column("variable").combine_chunks())
    codes = np.asarray(encoded.indices)
    names = encoded.dictionary.to_pylist()
    changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    if len(changes) + 1 == len(names):  # one run per variable
        starts = np.r_[0, changes]
        stops = np.r_[changes, len(codes)]
        return [
            (names[codes[a]], rows.slice(int(a), int(b - a)))
            for a, b in zip(starts, stops, strict=True)
        ]
    column = rows.column("variable")
    return [(name, rows.filter(pc.equal(column, name))) for name in names]


def _check_stated_unit(
    stream: Stream, url: str, raw_file: str | None, column: str, stated: str, expected: str
) -> None:
    """ParseError if the response states a unit for a column that is unknown or differs
    from the unit the registry says the source uses (values would be silently wrong)."""
    try:
        same = parse_unit(stated) == parse_unit(expected)
    except ValueError as exc:
        raise ParseError(
            source=stream.id, url=url, file=raw_file, what=f"column {column}: {exc}"
        ) from None
    if not same:
        raise ParseError(
            source=stream.id,
            url=url,
            file=raw_file,
            what=f"column {column}: the response says units {stated!r}, the registry says "
            f"{expected!r}",
        )


def _surface_if_unknown(z: pa.Array | pa.ChunkedArray) -> pa.Array:
    """z where the source gives none: 0 m, the surface (keys need a value, not NaN)."""
    z = pc.fill_null(z, 0.0)
    return pc.if_else(pc.is_nan(z), 0.0, z)


def _empty(stream: Stream, rows: pa.Table) -> pa.Table:
    return (
        rows.slice(0, 0)
        .append_column("dataset_id", pa.array([], pa.string()))
        .append_column("raw_id", pa.array([], pa.string()))
    )


def in_window(rows: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    """Rows inside a backfill's [since, until]; a yearly file may hold more than was asked."""
    if since is None and until is None:
        return rows
    times = rows.column("time")
    keep = pc.is_valid(times)
    if since is not None:
        keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(utc(since), times.type)))
    if until is not None:
        keep = pc.and_(keep, pc.less_equal(times, pa.scalar(utc(until), times.type)))
    return rows if pc.all(keep).as_py() else rows.filter(keep)
