"""NDBC buoys and C-MAN stations: realtime2 text files and historical stdmet yearly files.

Files are whitespace-separated with two header lines ('#YY MM DD hh mm WDIR ...' and the
units line); missing values are 'MM' in real-time files and 99/999/9999 in history.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.base import SOURCE_SCHEMA, Parsed, RawResponse, Request, StationInfo
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream

DEFAULT_URL = "https://www.ndbc.noaa.gov"

#: Standard meteorological columns (realtime2 `.txt`, historical `h<year>.txt`).
STDMET: dict[str, VariableMapping] = {
    "WDIR": VariableMapping("wind_from_direction"),
    "WSPD": VariableMapping("wind_speed"),
    "GST": VariableMapping("wind_speed_of_gust"),
    "WVHT": VariableMapping("sea_surface_wave_significant_height"),
    "DPD": VariableMapping("sea_surface_wave_period_at_variance_spectral_density_maximum"),
    "APD": VariableMapping("sea_surface_wave_mean_period"),
    "MWD": VariableMapping("sea_surface_wave_from_direction_at_variance_spectral_density_maximum"),
    "PRES": VariableMapping("air_pressure_at_mean_sea_level"),
    "ATMP": VariableMapping("air_temperature"),
    "WTMP": VariableMapping("sea_surface_temperature"),
    "DEWP": VariableMapping("dew_point_temperature"),
    "VIS": VariableMapping("visibility_in_air"),
    "PTDY": VariableMapping("tendency_of_air_pressure"),
    "TIDE": VariableMapping("water_surface_height_above_reference_datum"),
}

#: Oceanographic columns (realtime2 `.ocean`); DEPTH gives each row's z.
OCEAN: dict[str, VariableMapping] = {
    "OTMP": VariableMapping("sea_water_temperature"),
    "COND": VariableMapping("sea_water_electrical_conductivity"),
    "SAL": VariableMapping("sea_water_practical_salinity"),
    "O2%": VariableMapping("fractional_saturation_of_oxygen_in_sea_water"),
    "O2PPM": VariableMapping("mass_concentration_of_oxygen_in_sea_water", units="mg/L"),
    "CLCON": VariableMapping("mass_concentration_of_chlorophyll_in_sea_water"),
    "TURB": VariableMapping("sea_water_turbidity"),
    "PH": VariableMapping("sea_water_ph_reported_on_total_scale"),
}

FILE_COLUMNS: dict[str, dict[str, VariableMapping]] = {"txt": STDMET, "ocean": OCEAN}

#: Missing-value codes of the historical files (and some real-time columns), per column.
MISSING_CODES: dict[str, tuple[float, ...]] = {
    "WDIR": (999.0,),
    "MWD": (999.0,),
    "WSPD": (99.0,),
    "GST": (99.0,),
    "WVHT": (99.0,),
    "DPD": (99.0,),
    "APD": (99.0,),
    "PRES": (9999.0,),
    "ATMP": (999.0,),
    "WTMP": (999.0,),
    "DEWP": (999.0,),
    "VIS": (99.0,),
    "TIDE": (99.0,),
    "PTDY": (99.0,),
}
TIME_COLUMNS = ("YY", "MM", "DD", "hh", "mm")


def station_urn(station: str) -> str:
    """IOOS URN of an NDBC station ('44013' -> 'urn:ioos:station:wmo:44013')."""
    return f"urn:ioos:station:wmo:{station.lower()}"


def _stations(stream: Stream) -> list[dict[str, Any]]:
    params = stream.source.params
    items = params.get("stations") or ([params["station"]] if "station" in params else [])
    if not items:
        raise ConfigError(
            "an ndbc source needs 'station' or 'stations'",
            stream=stream.id,
            field="source.stations",
        )
    return [i if isinstance(i, dict) else {"id": str(i)} for i in items]


class NdbcRealtime:
    """NDBC realtime2 files: `<base>/data/realtime2/<STATION>.<file>` (45 days each)."""

    kind: ClassVar[str] = "ndbc"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        base = (stream.source.url or DEFAULT_URL).rstrip("/")
        file = stream.source.params.get("file", "txt")
        return [
            Request(url=f"{base}/data/realtime2/{s['id'].upper()}.{file}", label=str(s["id"]))
            for s in _stations(stream)
        ]

    def stations(self, stream: Stream) -> list[StationInfo]:
        return [
            StationInfo(
                station_id=station_urn(str(s["id"])),
                name=s.get("name"),
                lon=s.get("lon"),
                lat=s.get("lat"),
                wmo_id=str(s["id"]),
                provider=s.get("owner", stream.provider.name),
                platform=s.get("platform", "buoy"),
            )
            for s in _stations(stream)
        ]

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        return FILE_COLUMNS.get(stream.source.params.get("file", "txt"), STDMET)

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        station = next(
            (s for s in _stations(stream) if str(s["id"]) == raw.label), _stations(stream)[0]
        )
        rows = parse_ndbc_text(
            raw.body,
            stream_id=stream.id,
            url=raw.url,
            raw_file=raw_file,
            station_id=station_urn(str(station["id"])),
            lon=station.get("lon"),
            lat=station.get("lat"),
        )
        return Parsed(rows=rows)


def _fail(stream_id: str, url: str, raw_file: str, what: str) -> ParseError:
    return ParseError(source=stream_id, url=url, file=raw_file, what=what)


def parse_ndbc_text(
    body: bytes,
    *,
    stream_id: str,
    url: str,
    raw_file: str,
    station_id: str,
    lon: float | None = None,
    lat: float | None = None,
) -> pa.Table:
    """Parse an NDBC realtime2 or historical text file into long source-named rows."""
    text = body.decode("latin-1")
    lines = text.splitlines()
    if not lines or not text.strip():
        raise _fail(stream_id, url, raw_file, "the response is empty")
    header = lines[0].lstrip("#").split()
    if header[:1] in (["YY"], ["YYYY"]) and len(header) > 5:
        header[0] = "YY"
    else:
        start = lines[0][:60].strip()
        raise _fail(
            stream_id,
            url,
            raw_file,
            f"expected an NDBC header starting '#YY MM DD hh mm', found {start!r}",
        )
    units_line = lines[1].lstrip("#").split() if len(lines) > 1 and lines[1].startswith("#") else []
    units = dict(zip(header, units_line, strict=False)) if len(units_line) == len(header) else {}
    skip = 2 if units else 1
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(lines[skip:])),
            sep=r"\s+",
            header=None,
            names=header,
            dtype=str,
            na_values=["MM"],
            keep_default_na=False,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise _fail(stream_id, url, raw_file, f"rows do not match the header: {exc}") from None
    if frame.empty:
        raise _fail(stream_id, url, raw_file, "the file has a header but no data rows")
    if frame.iloc[:, -1].isna().any() and len(frame.columns) == len(header):
        bad = int(np.flatnonzero(frame.iloc[:, -1].isna().to_numpy())[0])
        if not frame.iloc[bad].isna().all() and frame.iloc[bad, 5:].isna().all():
            raise _fail(
                stream_id, url, raw_file, f"row {bad + skip + 1} is cut short (truncated file?)"
            )
    try:
        parts = {c: pd.to_numeric(frame[c], errors="raise").astype("int64") for c in TIME_COLUMNS}
    except (ValueError, TypeError) as exc:
        raise _fail(stream_id, url, raw_file, f"a time column is not a number: {exc}") from None
    year = parts["YY"].where(parts["YY"] > 100, parts["YY"] + 1900)
    try:
        times = pd.to_datetime(
            pd.DataFrame(
                {
                    "year": year,
                    "month": parts["MM"],
                    "day": parts["DD"],
                    "hour": parts["hh"],
                    "minute": parts["mm"],
                }
            ),
            utc=True,
        )
    except (ValueError, OverflowError) as exc:
        raise _fail(stream_id, url, raw_file, f"invalid date in a row: {exc}") from None
    z = None
    if "DEPTH" in frame.columns:
        z = -pd.to_numeric(frame["DEPTH"], errors="coerce").to_numpy(dtype="float64")
    tables = []
    for column in header:
        if column in TIME_COLUMNS or column == "DEPTH":
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise _fail(
                stream_id,
                url,
                raw_file,
                f"column {column}: {frame[column].iloc[row]!r} at data row {row + 1} "
                "is not a number",
            )
        array = values.to_numpy(dtype="float64")
        for code in MISSING_CODES.get(column, ()):
            array = np.where(array == code, np.nan, array)
        n = len(array)
        tables.append(
            pa.table(
                {
                    "station_id": pa.array([station_id] * n, pa.string()),
                    "time": pa.array(times, pa.timestamp("us", tz="UTC")),
                    "z": pa.array(z if z is not None else np.full(n, np.nan)),
                    "lon": pa.array([lon] * n, pa.float64()),
                    "lat": pa.array([lat] * n, pa.float64()),
                    "variable": pa.array([column] * n, pa.string()),
                    "value": pa.array(array, from_pandas=True),
                    "units": pa.array([units.get(column, "")] * n, pa.string()),
                    "provider_flag": pa.nulls(n, pa.string()),
                },
                schema=SOURCE_SCHEMA,
            )
        )
    return pa.concat_tables(tables)
