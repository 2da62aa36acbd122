"""NDBC buoys and C-MAN stations: realtime2 text files and historical yearly files.

The files' text format is read by `ingest.ndbc_text`; NDBC's station table (positions,
owners, platform types) by `NdbcRealtime.parse_metadata`.

Real-time files hold the last 45 days. Older data come from the yearly history files
(`<station><letter><year>.txt.gz`, one per year), so a backfill with --since before that
becomes one request per year plus the real-time file. Both land as the same rows in the
same dataset: data older than a month are simply historical, found by the same queries.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from ingest.base import (
    Parsed,
    RawResponse,
    Request,
    StationInfo,
    is_file_url,
    registry_stations,
    utc,
)
from ingest.ndbc_text import parse_ndbc_text
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream
from lake.stations import station_urn as ioos_station_urn

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

#: Spectral wave summary (realtime2 `.spec`); SwD/WWD are compass points, made degrees.
SPEC: dict[str, VariableMapping] = {
    "WVHT": VariableMapping("sea_surface_wave_significant_height"),
    "SwH": VariableMapping("sea_surface_swell_wave_significant_height"),
    "SwP": VariableMapping("sea_surface_swell_wave_period"),
    "WWH": VariableMapping("sea_surface_wind_wave_significant_height"),
    "WWP": VariableMapping("sea_surface_wind_wave_period"),
    "SwD": VariableMapping("sea_surface_swell_wave_from_direction", units="degree"),
    "WWD": VariableMapping("sea_surface_wind_wave_from_direction", units="degree"),
    "APD": VariableMapping("sea_surface_wave_mean_period"),
    "MWD": VariableMapping("sea_surface_wave_from_direction_at_variance_spectral_density_maximum"),
}

#: Continuous winds (realtime2 `.cwind`, 10-minute means; history `c<year>`).
CWIND: dict[str, VariableMapping] = {
    "WDIR": VariableMapping("wind_from_direction"),
    "WSPD": VariableMapping("wind_speed"),
    "GDR": VariableMapping("wind_gust_from_direction"),
    "GST": VariableMapping("wind_speed_of_gust"),
}

FILE_COLUMNS: dict[str, dict[str, VariableMapping]] = {
    "txt": STDMET,
    "ocean": OCEAN,
    "spec": SPEC,
    "cwind": CWIND,
}

#: History folder and file letter of each real-time file's product on NDBC's server.
HISTORY: dict[str, tuple[str, str]] = {
    "stdmet": ("stdmet", "h"),
    "cwind": ("cwind", "c"),
    "ocean": ("ocean", "o"),
}
REALTIME_HISTORY = {"txt": "stdmet", "cwind": "cwind", "ocean": "ocean"}
#: How far back a realtime2 file reaches.
REALTIME_SPAN = timedelta(days=45)


def station_urn(station: str) -> str:
    """IOOS URN of an NDBC station ('44013' -> 'urn:ioos:station:wmo:44013')."""
    return ioos_station_urn("wmo", station.lower())


class NdbcRealtime:
    """NDBC realtime2 files: `<base>/data/realtime2/<STATION>.<file>` (45 days each)."""

    kind: ClassVar[str] = "ndbc"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        """The real-time file per station, plus one history file per year a backfill (or
        the registry's `years`) reaches beyond the real-time file's 45 days."""
        base = (stream.source.url or DEFAULT_URL).rstrip("/")
        params = stream.source.params
        file = params.get("file", "txt")
        if file not in FILE_COLUMNS:
            raise ConfigError(
                f"unknown NDBC file {file!r}; known: {sorted(FILE_COLUMNS)}",
                stream=stream.id,
                field="source.file",
            )
        now = datetime.now(UTC)
        years = {int(y) for y in params.get("years", [])}
        realtime = True
        if since is not None:
            start, end = utc(since), utc(until) if until is not None else now
            realtime = end >= now - REALTIME_SPAN
            if start < now - REALTIME_SPAN:
                years |= set(range(start.year, min(end.year, now.year - 1) + 1))
        history = str(params.get("history", REALTIME_HISTORY.get(file, "")))
        if years and history not in HISTORY:
            raise ConfigError(
                f"NDBC keeps no yearly history for {file!r} files; set source.history to one "
                f"of {sorted(HISTORY)} or drop source.years",
                stream=stream.id,
                field="source.history",
            )
        out = []
        for s in registry_stations(stream):
            sid = str(s["id"])
            for year in sorted(years):
                folder, letter = HISTORY[history]
                name = f"{sid.lower()}{letter}{year}.txt"
                if is_file_url(base):
                    url = f"{base}/data/historical/{folder}/{name}"
                else:
                    url = (
                        f"{base}/view_text_file.php?filename={name}.gz"
                        f"&dir=data/historical/{folder}/"
                    )
                out.append(Request(url=url, label=f"{sid} {year}"))
            if realtime:
                out.append(Request(url=f"{base}/data/realtime2/{sid.upper()}.{file}", label=sid))
        return out

    def metadata_requests(self, stream: Stream) -> list[Request]:
        """NDBC's active-station table (name, position, owner, platform type), unless the
        registry turns it off with `station_metadata: false`."""
        if not stream.source.params.get("station_metadata", True):
            return []
        base = (stream.source.url or DEFAULT_URL).rstrip("/")
        return [Request(url=f"{base}/activestations.xml", label="metadata")]

    def parse_metadata(self, stream: Stream, raw: RawResponse, raw_file: str) -> list[StationInfo]:
        """The stream's stations from activestations.xml; a station not listed there (retired)
        keeps what the registry says."""
        try:
            root = ET.fromstring(raw.body)
        except ET.ParseError as exc:
            raise _fail(stream.id, raw.url, raw_file, f"not the station XML: {exc}") from None
        wanted = {str(s["id"]).lower() for s in registry_stations(stream)}
        out = []
        for node in root.iter("station"):
            sid = node.get("id", "").lower()
            if sid not in wanted:
                continue
            out.append(
                StationInfo(
                    station_id=station_urn(sid),
                    name=node.get("name"),
                    lon=_float(node.get("lon")),
                    lat=_float(node.get("lat")),
                    wmo_id=sid.upper(),
                    provider=node.get("owner"),
                    platform=node.get("type"),
                    attributes={
                        k: node.get(k) for k in ("pgm", "elev", "met", "currents") if node.get(k)
                    },
                )
            )
        return out

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
            for s in registry_stations(stream)
        ]

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        return FILE_COLUMNS.get(stream.source.params.get("file", "txt"), STDMET)

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        label = raw.label.split(" ")[0]
        station = next(
            (s for s in registry_stations(stream) if str(s["id"]) == label),
            registry_stations(stream)[0],
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


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _fail(stream_id: str, url: str, raw_file: str, what: str) -> ParseError:
    return ParseError(source=stream_id, url=url, file=raw_file, what=what)
