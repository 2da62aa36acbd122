"""NERRS System-Wide Monitoring Program: CDMO export files (water quality, 15-minute).

CDMO exports one CSV per station and year (`<station><year>.csv`, e.g. gndblwq2021.csv)
with a value column and an `F_<column>` QC flag column for each parameter. The flags
(`<0>`, `<1> [SDO] (CCU)`, `<-2> [GSM]` ...) are CDMO's own and are kept verbatim in
provider_flag; our QARTOD flags sit beside them.

Times are Local Standard Time of the station all year (no daylight saving), so each station
needs its `utc_offset` (hours, from CDMO's sampling-station table: -6 for Grand Bay). A
station without one is refused rather than read as UTC.

The source url is a folder or HTTP location holding the exports, one CSV per station and
year, or (with `zip: "{year}.zip"`, a name pattern under url) the zip archives of CSVs that
CDMO's download page serves; each archive is read with the same parse, the stream's
stations picked out of it by file name. CDMO's own web service is SOAP behind registration.

Each row's `Historical` / `ProvisionalPlus` columns say how far CDMO's review has gone: the
row's source is `historical` (annual QA/QC done, rank 2), `provisional_plus` (1) or
`provisional` (0), so a re-read export replaces provisional values once they are final.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from ingest.base import (
    Parsed,
    RawResponse,
    Request,
    StationInfo,
    source_rank,
    text_of,
    utc,
    with_source,
)
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


#: CDMO's review stages, from each row's Historical / ProvisionalPlus columns.
REVIEW_RANKS = {"provisional": 0, "provisional_plus": 1, "historical": 2}
_REVIEW_COLUMNS = ("Historical", "ProvisionalPlus")


class Nerrs:
    """CDMO export CSVs, one per station and year."""

    kind: ClassVar[str] = "nerrs"
    #: The products this source tags its values with, and their default ranks.
    source_ranks: ClassVar[dict[str, int]] = REVIEW_RANKS

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
        archive = stream.source.params.get("zip")
        if archive:
            return [
                Request(url=f"{base}/{str(archive).format(year=year)}", label=f"zip {year}")
                for year in sorted(years)
            ]
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
        if raw.body[:4] == b"PK\x03\x04":
            return Parsed(rows=parse_archive(stream, raw, raw_file))
        code = raw.label.split(" ")[0]
        station = next((s for s in _stations(stream) if s["id"] == code), None)
        if station is None:
            raise ParseError(
                source=stream.id, url=raw.url, file=raw_file, what=f"no station {code}"
            )
        return Parsed(rows=parse_export(stream, station, raw.body, url=raw.url, raw_file=raw_file))


def parse_archive(stream: Stream, raw: RawResponse, raw_file: str) -> pa.Table:
    """The stream's stations' CSVs from a CDMO zip archive (`<station><year>.csv`)."""

    def fail(what: str) -> ParseError:
        return ParseError(source=stream.id, url=raw.url, file=raw_file, what=what)

    try:
        archive = zipfile.ZipFile(io.BytesIO(raw.body))
        names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
    except zipfile.BadZipFile as exc:
        raise fail(f"not a readable zip archive: {exc}") from None
    tables = []
    for station in _stations(stream):
        code = str(station["id"]).lower()
        for name in names:
            if PurePosixPath(name).name.lower().startswith(code):
                try:
                    body = archive.read(name)
                except (zipfile.BadZipFile, OSError) as exc:
                    raise fail(f"{name} in the archive cannot be read: {exc}") from None
                where = f"{raw.url} ({name})"
                tables.append(parse_export(stream, station, body, url=where, raw_file=raw_file))
    if not tables:
        wanted = [str(s["id"]) for s in _stations(stream)]
        raise fail(f"the archive has no CSV of stations {wanted}; it holds {names}")
    return pa.concat_tables(tables)


def parse_export(
    stream: Stream, station: dict[str, Any], body: bytes, *, url: str, raw_file: str
) -> pa.Table:
    """One station's export CSV to source rows, each tagged with CDMO's review stage."""
    code = str(station["id"])
    offset = station.get("utc_offset")
    header = {c.strip() for c in text_of(body)[:4096].split("\n", 1)[0].split(",")}
    # registry columns are required; otherwise whichever water-quality columns the
    # export has (older stations have no ChlFluor)
    columns = (
        [v.source for v in stream.variables]
        or [c for c in WATER_QUALITY if c in header]
        or list(WATER_QUALITY)
    )
    review = [c for c in _REVIEW_COLUMNS if c in header]
    spec = TextSpec(
        variables={c: "" for c in [*columns, *review]},
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
    rows = parse_delimited(body, stream_id=stream.id, url=url, raw_file=raw_file, spec=spec)
    return _with_review(stream, rows)


def _with_review(stream: Stream, rows: pa.Table) -> pa.Table:
    """Data rows tagged historical / provisional_plus / provisional from the review columns
    (read as values of the same time), which are then dropped."""
    is_review = pc.is_in(rows.column("variable"), pa.array(_REVIEW_COLUMNS))
    marks = rows.filter(is_review)
    data = rows.filter(pc.invert(is_review))
    if marks.num_rows == 0:
        return data
    # One export is one station: the review columns join the data rows on time.
    data = data.append_column("__row", pa.array(range(data.num_rows), pa.int64()))
    joined = data.select(["__row", "time"])
    for column in _REVIEW_COLUMNS:
        part = marks.filter(pc.equal(marks.column("variable"), column))
        once = part.group_by("time", use_threads=False).aggregate([("value", "max")])
        once = once.select(["time", "value_max"]).rename_columns(["time", column])
        joined = joined.join(once, "time", join_type="left outer")
    joined = joined.sort_by("__row")
    historical = _is_one(joined, "Historical")
    plus = _is_one(joined, "ProvisionalPlus")
    stages = pc.if_else(
        historical, "historical", pc.if_else(plus, "provisional_plus", "provisional")
    )
    sources = stages.to_pylist()
    ranks = {name: source_rank(stream, name, rank) for name, rank in REVIEW_RANKS.items()}
    return with_source(data.drop_columns(["__row"]), sources, [ranks[s] for s in sources])


def _is_one(table: pa.Table, column: str) -> pa.Array:
    if column not in table.column_names:
        return pa.array([False] * table.num_rows)
    return pc.fill_null(pc.equal(table.column(column), 1.0), False)
