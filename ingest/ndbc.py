"""NDBC buoys and C-MAN stations: realtime2 text files and historical yearly files.

The files' text format is read by `ingest.ndbc_text`; NDBC's station table (positions,
owners, platform types) by `NdbcRealtime.parse_metadata`.

Real-time files hold the last 45 days. Older data come from NDBC's quality-controlled
history: one monthly file per finished month of the current year
(`data/stdmet/<Mon>/<station><month letter><year>.txt.gz`) and one yearly file per earlier
year (`<station><letter><year>.txt.gz`), so any --since/--until window is read from the files
that hold it (`plan_files`). All land as the same rows in the same dataset, tagged with the
product that answered (`source`: realtime2, monthly, yearly) and its rank: a monthly or
yearly value replaces the provisional real-time one, never the other way round.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from ingest.base import (
    Parsed,
    RawResponse,
    Request,
    StationInfo,
    is_file_url,
    registry_stations,
    source_rank,
    utc,
    with_source,
)
from ingest.ndbc_text import parse_ndbc_text
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, FetchError, ParseError
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
#: NDBC's folders of the current year's monthly files, and the month's letter in a file
#: name (`tplm212022.txt.gz` is January, `44013a2026.txt.gz` October).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_LETTERS = "123456789abc"
_FOLDERS = tuple(folder for folder, _ in HISTORY.values())
#: Default trust in each product (a stream's `source.priority` may change it): real-time
#: values are provisional, monthly files quality-controlled, yearly files final.
PRODUCT_RANKS = {"realtime2": 0, "monthly": 1, "yearly": 2}
#: Until this month of a year, last year's monthly files are asked for too (see plan_files).
LAST_YEAR_MONTHLY_UNTIL = 6


@dataclass(frozen=True, slots=True)
class NdbcFile:
    """One NDBC file for a station: the real-time file, a month of this year, or a year."""

    product: str  # realtime2 | monthly | yearly
    year: int | None = None
    month: int | None = None

    def label(self, station: str) -> str:
        if self.product == "yearly":
            return f"{station} yearly {self.year}"
        if self.product == "monthly":
            return f"{station} monthly {self.year}-{self.month:02d}"
        return f"{station} realtime2"

    def url(self, base: str, station: str, file: str, history: str) -> str:
        if self.product == "realtime2":
            return f"{base}/data/realtime2/{station.upper()}.{file}"
        folder, letter = HISTORY[history]
        if self.product == "yearly":
            name, where = f"{station.lower()}{letter}{self.year}.txt", f"data/historical/{folder}/"
        else:
            assert self.month is not None
            code = MONTH_LETTERS[self.month - 1]
            name, where = (
                f"{station.lower()}{code}{self.year}.txt",
                f"data/{folder}/{MONTHS[self.month - 1]}/",
            )
        if is_file_url(base):
            return f"{base}/{where}{name}"
        return f"{base}/view_text_file.php?filename={name}.gz&dir={where}"


def plan_files(
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    *,
    years: Iterable[int] = (),
    months: Iterable[tuple[int, int]] = (),
) -> list[NdbcFile]:
    """The files that together hold [since, until] as NDBC serves them at `now`.

    The real-time file holds the last 45 days; each finished month of the current year is
    a monthly file (quality-controlled, published some weeks after the month ends); each
    earlier year a yearly file. A poll (no window) reads the real-time file only. `years`
    and `months` (the registry's) are always read.
    """
    out = {NdbcFile("yearly", y) for y in years} | {NdbcFile("monthly", y, m) for y, m in months}
    if since is None and until is None:
        return sorted({*out, NdbcFile("realtime2")}, key=_order)
    start = utc(since) if since is not None else now - REALTIME_SPAN
    end = min(utc(until), now) if until is not None else now
    if end >= now - REALTIME_SPAN:
        out.add(NdbcFile("realtime2"))
    out |= {NdbcFile("yearly", y) for y in range(start.year, min(end.year, now.year - 1) + 1)}
    if end.year == now.year:
        first = start.month if start.year == now.year else 1
        # The month under way has no file yet.
        out |= {
            NdbcFile("monthly", now.year, m)
            for m in range(first, min(end.month, now.month - 1) + 1)
        }
    last_year = now.year - 1
    if now.month <= LAST_YEAR_MONTHLY_UNTIL and start.year <= last_year <= end.year:
        # Early in the year NDBC has not yet published last year's yearly file: its months
        # are still monthly files. Both are asked; the one not (or no longer) served is
        # "no data", and where both answer the yearly file ranks higher.
        first = start.month if start.year == last_year else 1
        final = end.month if end.year == last_year else 12
        out |= {NdbcFile("monthly", last_year, m) for m in range(first, final + 1)}
    return sorted(out, key=_order)


def _order(f: NdbcFile) -> tuple[int, int, int]:
    return (PRODUCT_RANKS[f.product], f.year or 0, f.month or 0)


def product_of(url: str) -> str:
    """Which NDBC product a URL is (the harvest log and the `source` column say it)."""
    if "/realtime2/" in url:
        return "realtime2"
    if "historical/" in url:
        return "yearly"
    return "monthly"


def station_urn(station: str) -> str:
    """IOOS URN of an NDBC station ('44013' -> 'urn:ioos:station:wmo:44013')."""
    return ioos_station_urn("wmo", station.lower())


class NdbcRealtime:
    """NDBC realtime2 files: `<base>/data/realtime2/<STATION>.<file>` (45 days each)."""

    kind: ClassVar[str] = "ndbc"
    #: The products this source tags its values with, and their default ranks.
    source_ranks: ClassVar[dict[str, int]] = PRODUCT_RANKS

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        """Per station, each file that holds part of the window (`plan_files`): the
        real-time file, the current year's monthly files, the yearly files; labelled
        `<station> <product> [<period>]` so the harvest log says which file answered.

        Within a station they come lowest rank first: where two files hold the same value
        the quality-controlled one, read later, is the one kept.
        """
        base = (stream.source.url or DEFAULT_URL).rstrip("/")
        params = stream.source.params
        file = params.get("file", "txt")
        if file not in FILE_COLUMNS:
            raise ConfigError(
                f"unknown NDBC file {file!r}; known: {sorted(FILE_COLUMNS)}",
                stream=stream.id,
                field="source.file",
            )
        planned = plan_files(
            since,
            until,
            datetime.now(UTC),
            years=[int(y) for y in params.get("years", [])],
            months=[_month(stream, m) for m in params.get("months", [])],
        )
        history = str(params.get("history", REALTIME_HISTORY.get(file, "")))
        if any(f.product != "realtime2" for f in planned) and history not in HISTORY:
            raise ConfigError(
                f"NDBC keeps no history for {file!r} files; set source.history to one "
                f"of {sorted(HISTORY)} or drop source.years/months",
                stream=stream.id,
                field="source.history",
            )
        out = []
        for s in registry_stations(stream):
            sid = str(s["id"])
            for planned_file in planned:
                url = planned_file.url(base, sid, file, history)
                out.append(Request(url=url, label=planned_file.label(sid)))
        return out

    def no_data(self, error: FetchError) -> bool:
        """A monthly file NDBC has not published yet (or has folded into the yearly file),
        or last year's yearly file early in the year (HTTP 404, or absent offline), means
        those quality-controlled values are not out there, not a broken source."""
        url = error.url or ""
        missing = "HTTP 404" in error.what or error.what == "file not found"
        monthly = any(f"data/{f}/{m}/" in url for f in _FOLDERS for m in MONTHS)
        now = datetime.now(UTC)
        last_year = now.month <= LAST_YEAR_MONTHLY_UNTIL and f"{now.year - 1}.txt" in url
        return missing and (monthly or ("historical/" in url and last_year))

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
        return self.parse_skipping_known(stream, raw, raw_file, {})

    def parse_skipping_known(
        self,
        stream: Stream,
        raw: RawResponse,
        raw_file: str,
        spans: Mapping[str, tuple[datetime, datetime]],
    ) -> Parsed:
        """As `parse`, skipping the records inside the span the lake already holds for
        every series of the station (`Marks.station_spans`, keyed by station URN)."""
        label = raw.label.split(" ")[0]
        station = next(
            (s for s in registry_stations(stream) if str(s["id"]) == label),
            registry_stations(stream)[0],
        )
        urn = station_urn(str(station["id"]))
        rows = parse_ndbc_text(
            raw.body,
            stream_id=stream.id,
            url=raw.url,
            raw_file=raw_file,
            station_id=urn,
            lon=station.get("lon"),
            lat=station.get("lat"),
            known=spans.get(urn),
        )
        product = product_of(raw.url)
        return Parsed(
            rows=with_source(rows, product, source_rank(stream, product, PRODUCT_RANKS[product]))
        )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _fail(stream_id: str, url: str, raw_file: str, what: str) -> ParseError:
    return ParseError(source=stream_id, url=url, file=raw_file, what=what)


def _month(stream: Stream, value: object) -> tuple[int, int]:
    """A registry month ('2026-09') as (year, month); ConfigError naming it if not one."""
    try:
        year, month = (int(part) for part in str(value).split("-"))
        if not 1 <= month <= 12:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"month {value!r} is not YYYY-MM", stream=stream.id, field="source.months"
        ) from None
    return year, month
