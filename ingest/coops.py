"""NOAA CO-OPS tide stations: the datagetter API (JSON) and the mdapi station metadata.

One request asks for one station, one product and one time window. CO-OPS refuses windows
longer than it allows (31 days of 6-minute data, a year of hourly data), so a backfill is
split into windows it accepts. Times are always asked for in GMT, so no time zone guessing.
The `units=` parameter (metric or english) decides what the values are in; we convert both
to the lake's canonical units.

Offline (a `file://` source) the same requests read recorded responses from a folder:
`<base>/api/prod/datagetter/<station>_<product>_<units>_<begin>-<end>.json` (begin and end
as YYYYMMDDHHMM, or `recent` for the real-time request) and
`<base>/mdapi/prod/webapi/stations/<station>.json`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.base import (
    SOURCE_SCHEMA,
    Parsed,
    RawResponse,
    Request,
    StationInfo,
    data_text,
    is_file_url,
    registry_stations,
    source_rank,
    source_rows,
    utc,
    windows,
    with_source,
)
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream
from lake.stations import station_urn

DEFAULT_URL = "https://api.tidesandcurrents.noaa.gov"
DATAGETTER = "/api/prod/datagetter"
MDAPI = "/mdapi/prod/webapi/stations"

#: For each product: the JSON field -> (our source column, CF standard name).
PRODUCTS: dict[str, dict[str, tuple[str, str]]] = {
    "water_level": {"v": ("water_level", "water_surface_height_above_reference_datum")},
    "hourly_height": {"v": ("hourly_height", "water_surface_height_above_reference_datum")},
    "water_temperature": {"v": ("water_temperature", "sea_water_temperature")},
    "air_temperature": {"v": ("air_temperature", "air_temperature")},
    "air_pressure": {"v": ("air_pressure", "air_pressure")},
    "conductivity": {"v": ("conductivity", "sea_water_electrical_conductivity")},
    "salinity": {"s": ("salinity", "sea_water_practical_salinity")},
    "wind": {
        "s": ("wind_speed", "wind_speed"),
        "d": ("wind_direction", "wind_from_direction"),
        "g": ("wind_gust", "wind_speed_of_gust"),
    },
    "predictions": {
        "v": ("predictions", "sea_surface_height_amplitude_due_to_geocentric_ocean_tide")
    },
}

#: Units CO-OPS answers in, by product and unit system (its documentation, "units").
UNITS: dict[str, dict[str, str]] = {
    "metric": {
        "water_level": "m",
        "hourly_height": "m",
        "predictions": "m",
        "water_temperature": "degC",
        "air_temperature": "degC",
        "air_pressure": "hPa",
        "conductivity": "mS/cm",
        "salinity": "1",
        "wind_speed": "m/s",
        "wind_gust": "m/s",
        "wind_direction": "degree",
    },
    "english": {
        "water_level": "ft",
        "hourly_height": "ft",
        "predictions": "ft",
        "water_temperature": "degF",
        "air_temperature": "degF",
        "air_pressure": "hPa",
        "conductivity": "mS/cm",
        "salinity": "1",
        "wind_speed": "kn",
        "wind_gust": "kn",
        "wind_direction": "degree",
    },
}

#: The longest window CO-OPS serves in one request, per product (6-minute data: 31 days).
MAX_WINDOW: dict[str, timedelta] = {
    "hourly_height": timedelta(days=365),
    "predictions": timedelta(days=365),
}
SIX_MINUTE_WINDOW = timedelta(days=31)
DATUM_PRODUCTS = frozenset({"water_level", "hourly_height", "predictions"})
#: The naming authority of CO-OPS station URNs: '9447130' is
#: 'urn:ioos:station:NOAA.NOS.CO-OPS:9447130'.
AUTHORITY = "NOAA.NOS.CO-OPS"


def _products(stream: Stream) -> list[str]:
    params = stream.source.params
    products = params.get("products") or [params.get("product", "water_level")]
    unknown = [p for p in products if p not in PRODUCTS]
    if unknown:
        raise ConfigError(
            f"unknown CO-OPS product {unknown[0]!r}; known: {sorted(PRODUCTS)}",
            stream=stream.id,
            field="source.product",
        )
    return list(products)


def _unit_system(stream: Stream) -> str:
    units = stream.source.params.get("units", "metric")
    if units not in UNITS:
        raise ConfigError(
            f"CO-OPS units must be 'metric' or 'english', got {units!r}",
            stream=stream.id,
            field="source.units",
        )
    return str(units)


def source_units(column: str, unit_system: str) -> str:
    """The unit CO-OPS uses for a source column in a unit system ('water_level', 'english'
    -> 'ft')."""
    return UNITS[unit_system][column]


#: CO-OPS's `q` field: p preliminary (real time), v verified (reviewed by CO-OPS).
QUALITY_SOURCES = {"p": "preliminary", "v": "verified"}
QUALITY_RANKS = {"preliminary": 0, "verified": 1}


class Coops:
    """CO-OPS datagetter + mdapi."""

    kind: ClassVar[str] = "coops"
    #: The products this source tags its values with, and their default ranks.
    source_ranks: ClassVar[dict[str, int]] = QUALITY_RANKS

    def _base(self, stream: Stream) -> str:
        return (stream.source.url or DEFAULT_URL).rstrip("/")

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        """One request per station, product and window; without a window, the recent data.

        The registry may pin a window (`begin`, `end`): an archive that does not change.
        """
        base = self._base(stream)
        params = stream.source.params
        units = _unit_system(stream)
        if since is None and params.get("begin") is not None:
            since = pd.Timestamp(params["begin"]).to_pydatetime()
            until = pd.Timestamp(params["end"]).to_pydatetime() if params.get("end") else None
        out = []
        for station in registry_stations(stream):
            sid = str(station["id"])
            for product in _products(stream):
                query: dict[str, str] = {}
                spans: list[tuple[datetime, datetime] | None]
                if since is None:
                    spans = [None]
                else:
                    end = utc(until) if until is not None else datetime.now(UTC)
                    length = MAX_WINDOW.get(product, SIX_MINUTE_WINDOW)
                    if params.get("interval") == "h":
                        length = timedelta(days=365)
                    spans = list(windows(since, end, length))
                for span in spans:
                    if span is None:
                        query = {"date": "recent"}
                        tag = "recent"
                    else:
                        query = {
                            "begin_date": f"{span[0]:%Y%m%d %H:%M}",
                            "end_date": f"{span[1]:%Y%m%d %H:%M}",
                        }
                        tag = f"{span[0]:%Y%m%d%H%M}-{span[1]:%Y%m%d%H%M}"
                    query |= {"station": sid, "product": product}
                    if product in DATUM_PRODUCTS:
                        query["datum"] = str(params.get("datum", "MLLW"))
                    if params.get("interval"):
                        query["interval"] = str(params["interval"])
                    query |= {
                        "units": units,
                        "time_zone": "gmt",
                        "application": str(params.get("application", "coastlake")),
                        "format": "json",
                    }
                    if is_file_url(base):
                        url = f"{base}{DATAGETTER}/{sid}_{product}_{units}_{tag}.json"
                    else:
                        url = f"{base}{DATAGETTER}?{urlencode(query)}"
                    out.append(Request(url=url, label=f"{sid} {product} {tag}"))
        return out

    def metadata_requests(self, stream: Stream) -> list[Request]:
        """The mdapi record of every station (name, position, affiliations, sensors)."""
        base = self._base(stream)
        out = []
        for station in registry_stations(stream):
            sid = str(station["id"])
            url = f"{base}{MDAPI}/{sid}.json"
            if not is_file_url(base):
                url += "?expand=details,sensors,datums&units=metric"
            out.append(Request(url=url, label=f"{sid} metadata"))
        return out

    def parse_metadata(self, stream: Stream, raw: RawResponse, raw_file: str) -> list[StationInfo]:
        doc = _json(stream, raw, raw_file)
        items = doc.get("stations") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            raise ParseError(
                source=stream.id, url=raw.url, file=raw_file, what="no 'stations' in mdapi reply"
            )
        out = []
        for s in items:
            sid = str(s.get("id"))
            keep = ("state", "timezone", "timezonecorr", "affiliations", "tidal", "tideType")
            sensors = s.get("sensors", {})
            attrs = {k: s.get(k) for k in keep if k in s}
            if isinstance(sensors, dict) and isinstance(sensors.get("sensors"), list):
                attrs["sensors"] = [x.get("name") for x in sensors["sensors"]]
            out.append(
                StationInfo(
                    station_id=station_urn(AUTHORITY, sid),
                    name=s.get("name"),
                    lon=_float(s.get("lng")),
                    lat=_float(s.get("lat")),
                    wmo_id=None,
                    provider="NOAA CO-OPS",
                    platform="fixed tide station",
                    attributes=attrs,
                )
            )
        return out

    def stations(self, stream: Stream) -> list[StationInfo]:
        return [
            StationInfo(
                station_id=station_urn(AUTHORITY, str(s["id"])),
                name=s.get("name"),
                lon=s.get("lon"),
                lat=s.get("lat"),
                provider=stream.provider.name,
                platform=s.get("platform", "fixed tide station"),
            )
            for s in registry_stations(stream)
        ]

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        units = _unit_system(stream)
        mapping = {}
        for product in _products(stream):
            for column, standard_name in PRODUCTS[product].values():
                mapping[column] = VariableMapping(standard_name, source_units(column, units))
        return mapping

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        sid, product = raw.label.split(" ")[:2]
        rows = parse_coops_json(
            raw.body,
            stream_id=stream.id,
            url=raw.url,
            raw_file=raw_file,
            product=product,
            units=_unit_system(stream),
            station=sid,
        )
        return Parsed(rows=tag_quality(stream, rows))


def tag_quality(stream: Stream, rows: pa.Table) -> pa.Table:
    """Each row's source from CO-OPS's `q` (kept in provider_flag as `q=v`): a verified
    value replaces the preliminary one of the same time, never the other way round.
    Products without `q` (predictions, met data) are left untagged."""
    flags = rows.column("provider_flag").to_pylist()
    sources = [_quality(flag) for flag in flags]
    if not any(sources):
        return rows
    ranks = {name: source_rank(stream, name, rank) for name, rank in QUALITY_RANKS.items()}
    return with_source(rows, sources, [ranks.get(s, 0) if s else None for s in sources])


def _quality(flag: str | None) -> str | None:
    for part in (flag or "").split(";"):
        if part.startswith("q="):
            return QUALITY_SOURCES.get(part[2:].strip().lower())
    return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _json(stream: Stream | str, raw: RawResponse, raw_file: str) -> Any:
    stream_id = stream if isinstance(stream, str) else stream.id
    text = data_text(raw.body, stream_id=stream_id, url=raw.url, raw_file=raw_file, expected="JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            source=stream_id, url=raw.url, file=raw_file, what=f"not valid JSON (truncated?): {exc}"
        ) from None


def parse_coops_json(
    body: bytes,
    *,
    stream_id: str,
    url: str,
    raw_file: str,
    product: str,
    units: str,
    station: str,
) -> pa.Table:
    """A datagetter JSON reply to long source-named rows.

    CO-OPS answers an impossible request with HTTP 200 and {"error": {"message": ...}};
    that is a failed syntax test carrying CO-OPS's own words. The quality fields (`f` flags,
    `q` preliminary/verified, `s` sigma) are kept verbatim in provider_flag.
    """
    raw = RawResponse(stream_id=stream_id, url=url, body=body, fetched_at=datetime.now())
    doc = _json(stream_id, raw, raw_file)
    if isinstance(doc, dict) and "error" in doc:
        message = doc["error"].get("message") if isinstance(doc["error"], dict) else doc["error"]
        raise ParseError(source=stream_id, url=url, file=raw_file, what=f"CO-OPS says: {message}")
    data = doc.get("data", doc.get("predictions")) if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ParseError(
            source=stream_id, url=url, file=raw_file, what="no 'data' list in the reply"
        )
    if not data:
        return SOURCE_SCHEMA.empty_table()
    meta = doc.get("metadata", {})
    lon, lat = _float(meta.get("lon")), _float(meta.get("lat"))
    frame = pd.DataFrame.from_records(data)
    if "t" not in frame.columns:
        raise ParseError(source=stream_id, url=url, file=raw_file, what="rows have no 't' (time)")
    try:
        times = pd.to_datetime(frame["t"], format="%Y-%m-%d %H:%M", utc=True)
    except (ValueError, TypeError) as exc:
        raise ParseError(
            source=stream_id,
            url=url,
            file=raw_file,
            what=f"a time is not 'YYYY-MM-DD HH:MM': {exc}",
        ) from None
    flag_fields = [c for c in ("f", "q", "s") if c in frame.columns and c not in PRODUCTS[product]]
    flags = None
    if flag_fields:
        flags = frame[flag_fields[0]].astype(str).radd(f"{flag_fields[0]}=")
        for c in flag_fields[1:]:
            flags = flags + f";{c}=" + frame[c].astype(str)
    tables = []
    for field, (column, _) in PRODUCTS[product].items():
        if field not in frame.columns:
            raise ParseError(
                source=stream_id,
                url=url,
                file=raw_file,
                what=f"field {field!r} ({column}) missing; the rows have {sorted(frame.columns)}",
            )
        text = frame[field].replace("", np.nan)
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ParseError(
                source=stream_id,
                url=url,
                file=raw_file,
                what=f"{column}: {text.iloc[row]!r} at row {row + 1} is not a number",
            )
        tables.append(
            source_rows(
                station_id=station_urn(AUTHORITY, station),
                times=times,
                variable=column,
                values=values.to_numpy(dtype="float64"),
                units=source_units(column, units),
                lon=lon,
                lat=lat,
                provider_flag=flags.to_numpy() if flags is not None else None,
            )
        )
    return pa.concat_tables(tables)
