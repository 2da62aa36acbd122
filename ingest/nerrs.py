"""NERRS System-Wide Monitoring Program: CDMO export files (water quality, 15-minute).

CDMO exports one CSV per station and year (`<station><year>.csv`, e.g. gndblwq2021.csv)
with a value column and an `F_<column>` QC flag column for each parameter. The flags
(`<0>`, `<1> [SDO] (CCU)`, `<-2> [GSM]` ...) are CDMO's own and are kept verbatim in
provider_flag; our QARTOD flags sit beside them.

Times are Local Standard Time of the station all year (no daylight saving), so each station
needs its `utc_offset` (hours, from CDMO's sampling-station table: -6 for Grand Bay). A
station without one is refused rather than read as UTC.

The source url is a folder (or HTTP location) holding the exports: CDMO's web service is
SOAP behind registration, so a data manager drops the exports where the harvester reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from ingest.base import Parsed, RawResponse, Request, StationInfo, text_of, utc
from ingest.csv_source import TextSpec, parse_delimited
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream
from lake.stations import station_urn as ioos_station_urn

#: Water-quality columns of a CDMO export: CF name and the unit CDMO reports them in.
WATER_QUALITY: dict[str, VariableMapping] = {
    "Temp": VariableMapping("sea_water_temperature", "degC"),
    "SpCond": VariableMapping("sea_water_electrical_conductivity", "mS/cm"),
    "Sal": VariableMapping("sea_water_practical_salinity", "1"),
    "DO_Pct": VariableMapping("fractional_saturation_of_oxygen_in_sea_water", "percent"),
    "DO_mgl": VariableMapping("mass_concentration_of_oxygen_in_sea_water", "mg/L"),
    "Depth": VariableMapping("depth", "m"),
    "pH": VariableMapping("sea_water_ph_reported_on_total_scale", "1"),
    "Turb": VariableMapping("sea_water_turbidity", "1"),
    "ChlFluor": VariableMapping("mass_concentration_of_chlorophyll_in_sea_water", "ug/L"),
}


def station_urn(code: str) -> str:
    """IOOS URN of a NERRS station ('gndblwq' -> 'urn:ioos:station:nerrs:gndblwq')."""
    return ioos_station_urn("nerrs", code.strip().lower())


def _stations(stream: Stream) -> list[dict[str, Any]]:
    items = stream.source.params.get("stations") or []
    if not items or not all(isinstance(i, dict) and i.get("id") for i in items):
        raise ConfigError(
            "a nerrs source needs 'stations: [{id: gndblwq, utc_offset: -6, ...}]'",
            stream=stream.id,
            field="source.stations",
        )
    return list(items)


class Nerrs:
    """CDMO export CSVs, one per station and year."""

    kind: ClassVar[str] = "nerrs"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        if not stream.source.url:
            raise ConfigError("a nerrs source needs url", stream=stream.id, field="source.url")
        base = stream.source.url.rstrip("/")
        years = {int(y) for y in stream.source.params.get("years", [])}
        if since is not None:
            end = utc(until) if until is not None else datetime.now(UTC)
            years |= set(range(utc(since).year, end.year + 1))
        if not years:
            years = {datetime.now(UTC).year}
        return [
            Request(url=f"{base}/{s['id']}{year}.csv", label=f"{s['id']} {year}")
            for s in _stations(stream)
            for year in sorted(years)
        ]

    def stations(self, stream: Stream) -> list[StationInfo]:
        return [
            StationInfo(
                station_id=station_urn(s["id"]),
                name=s.get("name"),
                lon=s.get("lon"),
                lat=s.get("lat"),
                provider=stream.provider.name,
                platform=s.get("platform", "water quality sonde"),
                attributes={"reserve": s.get("reserve"), "utc_offset": s.get("utc_offset")},
            )
            for s in _stations(stream)
        ]

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        return dict(WATER_QUALITY)

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        code = raw.label.split(" ")[0]
        station = next((s for s in _stations(stream) if s["id"] == code), None)
        if station is None:
            raise ParseError(
                source=stream.id, url=raw.url, file=raw_file, what=f"no station {code}"
            )
        offset = station.get("utc_offset")
        header = {c.strip() for c in text_of(raw.body)[:4096].split("\n", 1)[0].split(",")}
        # registry columns are required; otherwise whichever water-quality columns the
        # export has (older stations have no ChlFluor)
        columns = (
            [v.source for v in stream.variables]
            or [c for c in WATER_QUALITY if c in header]
            or list(WATER_QUALITY)
        )
        spec = TextSpec(
            variables={c: "" for c in columns},
            time_columns=("DateTimeStamp",),
            time_format="%m/%d/%Y %H:%M",
            timezone=None if offset is None else f"{float(offset):+g}",
            station_column="StationCode",
            station_urn=ioos_station_urn("nerrs", "{}"),
            lon_column=None,
            lat_column=None,
            flag_prefix="F_",
            station={"id": code, "lon": station.get("lon"), "lat": station.get("lat")},
        )
        rows = parse_delimited(
            raw.body, stream_id=stream.id, url=raw.url, raw_file=raw_file, spec=spec
        )
        return Parsed(rows=rows)
