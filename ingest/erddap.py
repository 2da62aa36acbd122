"""Any ERDDAP server's tabledap: a time-series station dataset.

The dataset's variables, units, standard names and missing values are discovered from its
`info/<dataset>/index.csv` page, so a data manager names only the server, the dataset and
the station (its constraints); registry `variables` may still pick or rename. Data are
requested as `.csvp` (column names with units in parentheses, times ISO 8601 UTC).

Offline (a `file://` source) the info page is read from `<base>/info/<dataset>/index.csv`
(the same path) and the data from `<base>/tabledap/<dataset>/<station>.csvp`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.base import (
    Parsed,
    RawResponse,
    Request,
    StationInfo,
    data_text,
    is_file_url,
    looks_like_html,
    source_rows,
    text_of,
    utc,
)
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, FetchError, ParseError
from lake.registry import Stream
from lake.stations import station_urn

#: Variables that locate or identify rows rather than measure something.
COORDINATES = frozenset({"time", "latitude", "longitude", "depth", "altitude", "z"})
_CSVP_NAME = re.compile(r"^(?P<name>[^()]+?)\s*(?:\((?P<units>.*)\))?$")


@dataclass
class DatasetInfo:
    """What an ERDDAP info page says about a dataset: global and per-variable attributes."""

    globals: dict[str, str] = field(default_factory=dict)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)

    def data_variables(self) -> list[str]:
        """Measured variables: not coordinates, identifiers or quality codes."""
        out = []
        for name, attrs in self.variables.items():
            if name in COORDINATES or attrs.get("cf_role"):
                continue
            if attrs.get("ioos_category") in ("Identifier", "Quality", "Location", "Time"):
                continue
            if attrs.get("__type__") in ("String", "char"):
                continue
            standard_name = attrs.get("standard_name", "")
            if "flag" in standard_name or "flag_values" in attrs or "flag_meanings" in attrs:
                continue  # QC flags of the provider, not measurements
            if not standard_name and not attrs.get("units"):
                continue  # grid mappings (crs) and other containers
            out.append(name)
        return out


def parse_info(text: str, *, stream_id: str, url: str, raw_file: str) -> DatasetInfo:
    """An ERDDAP info/<id>/index.csv page to a DatasetInfo; ParseError if it is not one."""
    if looks_like_html(text):
        raise ParseError(
            source=stream_id, url=url, file=raw_file, what="expected the info CSV, got HTML"
        )
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0][:3] != ["Row Type", "Variable Name", "Attribute Name"]:
        start = rows[0][:3] if rows else []
        raise ParseError(
            source=stream_id,
            url=url,
            file=raw_file,
            what=f"expected an ERDDAP info table ('Row Type,Variable Name,...'), found {start}",
        )
    info = DatasetInfo()
    for row in rows[1:]:
        if len(row) < 5:
            continue
        kind, var, attr, dtype, value = row[:5]
        if kind == "variable":
            info.variables.setdefault(var, {})["__type__"] = dtype
        elif kind == "attribute" and var == "NC_GLOBAL":
            info.globals[attr] = value
        elif kind == "attribute":
            info.variables.setdefault(var, {})[attr] = value
    return info


def _station(stream: Stream) -> dict[str, Any]:
    params = stream.source.params
    station = params.get("station")
    if not isinstance(station, dict) or "id" not in station:
        raise ConfigError(
            "an erddap source needs 'station: {id: ..., constraints: {...}}'",
            stream=stream.id,
            field="source.station",
        )
    return station


def _dataset(stream: Stream) -> str:
    dataset = stream.source.params.get("dataset")
    if not dataset:
        raise ConfigError(
            "an erddap source needs 'dataset' (the ERDDAP dataset id)",
            stream=stream.id,
            field="source.dataset",
        )
    return str(dataset)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def stream_station_id(stream: Stream) -> str:
    """IOOS URN of the stream's station: its `urn` if the registry gives one, else
    `urn:ioos:station:<naming_authority>:<id>` (authority 'erddap' unless set)."""
    station = _station(stream)
    if station.get("urn"):
        return str(station["urn"])
    authority = str(stream.source.params.get("naming_authority", "erddap"))
    return station_urn(authority, str(station["id"]))


class Erddap:
    """ERDDAP tabledap time series at one station."""

    kind: ClassVar[str] = "erddap"

    def __init__(self) -> None:
        self.info: DatasetInfo | None = None

    def _base(self, stream: Stream) -> str:
        if not stream.source.url:
            raise ConfigError(
                "an erddap source needs url: the server, e.g. https://host/erddap",
                stream=stream.id,
                field="source.url",
            )
        return stream.source.url.rstrip("/")

    def metadata_requests(self, stream: Stream) -> list[Request]:
        return [
            Request(url=f"{self._base(stream)}/info/{_dataset(stream)}/index.csv", label="info")
        ]

    def parse_metadata(self, stream: Stream, raw: RawResponse, raw_file: str) -> list[StationInfo]:
        self.info = parse_info(
            text_of(raw.body), stream_id=stream.id, url=raw.url, raw_file=raw_file
        )
        station = _station(stream)
        g = self.info.globals
        return [
            StationInfo(
                station_id=stream_station_id(stream),
                name=station.get("name"),
                lon=station.get("lon"),
                lat=station.get("lat"),
                wmo_id=station.get("wmo_id"),
                provider=g.get("institution") or stream.provider.name,
                platform=station.get("platform", g.get("cdm_data_type", "").lower() or None),
                attributes={
                    k: g[k]
                    for k in ("title", "institution", "license", "infoUrl", "Conventions")
                    if k in g
                },
            )
        ]

    def stations(self, stream: Stream) -> list[StationInfo]:
        station = _station(stream)
        return [
            StationInfo(
                station_id=stream_station_id(stream),
                name=station.get("name"),
                lon=station.get("lon"),
                lat=station.get("lat"),
                wmo_id=station.get("wmo_id"),
                provider=stream.provider.name,
                platform=station.get("platform"),
            )
        ]

    def _variables(self, stream: Stream) -> list[str]:
        if stream.variables:
            return [v.source for v in stream.variables]
        if self.info is not None:
            return self.info.data_variables()
        raise ConfigError(
            "the dataset's variables are unknown: its info page could not be read and the "
            "registry lists no variables",
            stream=stream.id,
            field="variables",
        )

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        """One .csvp request for the station: its variables and time, within the window
        (without one, the last `lookback` of data, 7 days unless the registry says)."""
        base = self._base(stream)
        dataset = _dataset(stream)
        station = _station(stream)
        if is_file_url(base):
            url = f"{base}/tabledap/{dataset}/{station['id']}.csvp"
            return [Request(url=url, label=str(station["id"]))]
        if since is None:
            lookback = pd.Timedelta(stream.source.params.get("lookback", "7D")).to_pytimedelta()
            since = datetime.now(UTC) - lookback
        names = [*self._variables(stream), "time"] if self.info or stream.variables else ["time"]
        parts = [quote(",".join(names), safe="")]
        parts.append(f"time%3E={utc(since).timestamp():.1f}")
        if until is not None:
            parts.append(f"time%3C={utc(until).timestamp():.1f}")
        for name, value in (station.get("constraints") or {}).items():
            parts.append(f"{quote(name)}%3E={_number(value)}")
            parts.append(f"{quote(name)}%3C={_number(value)}")
        url = f"{base}/tabledap/{dataset}.csvp?" + "&".join(parts)
        return [Request(url=url, label=str(station["id"]))]

    def no_data(self, error: FetchError) -> bool:
        """ERDDAP answers a window with no rows with HTTP 404 and 'Your query produced no
        matching results': for a real-time poll that is 'nothing new', not a failure."""
        return "HTTP 404" in error.what and "no matching results" in error.what

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        """Variables with a CF standard name in the info page, in the units it gives."""
        out: dict[str, VariableMapping] = {}
        if self.info is None:
            return out
        for name in self.info.data_variables():
            attrs = self.info.variables[name]
            if attrs.get("standard_name"):
                out[name] = VariableMapping(attrs["standard_name"], attrs.get("units"))
        return out

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        station = _station(stream)
        return Parsed(
            rows=parse_csvp(
                raw.body,
                stream_id=stream.id,
                url=raw.url,
                raw_file=raw_file,
                station_id=stream_station_id(stream),
                lon=station.get("lon"),
                lat=station.get("lat"),
                info=self.info,
                wanted=[v.source for v in stream.variables] or None,
            )
        )


def parse_csvp(
    body: bytes,
    *,
    stream_id: str,
    url: str,
    raw_file: str,
    station_id: str,
    lon: float | None,
    lat: float | None,
    info: DatasetInfo | None = None,
    wanted: list[str] | None = None,
) -> pa.Table:
    """A tabledap .csvp reply ('name (units)' headers) to long source-named rows.

    Units come from the header; where the info page gives a missing_value or _FillValue,
    those values become nulls. A variable the registry asks for that the reply lacks (a
    renamed column) is a ParseError naming the columns that did arrive.
    """

    def fail(what: str) -> ParseError:
        return ParseError(source=stream_id, url=url, file=raw_file, what=what)

    text = data_text(body, stream_id=stream_id, url=url, raw_file=raw_file, expected="tabledap CSV")
    lines = text.splitlines()
    header = next(csv.reader([lines[0]]))
    columns: dict[str, str] = {}
    units: dict[str, str] = {}
    for item in header:
        match = _CSVP_NAME.match(item.strip())
        if not match:
            raise fail(f"cannot read column header {item!r}")
        columns[match["name"].strip()] = item
        units[match["name"].strip()] = (match["units"] or "").strip()
    if "time" not in columns:
        raise fail(f"no 'time (UTC)' column; the reply has {list(columns)}")
    if len(lines) < 2:
        raise fail("the reply has a header but no data rows")
    last = next(csv.reader([lines[-1]]))
    if len(last) != len(header):
        raise fail(
            f"row {len(lines)} has {len(last)} fields, the header {len(header)} (truncated file?)"
        )
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise fail(f"rows do not match the header: {exc}") from None
    frame.columns = list(columns)
    try:
        times = pd.to_datetime(frame["time"], format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise fail(f"a time is not ISO 8601: {exc}") from None
    names = wanted or [c for c in columns if c not in COORDINATES]
    missing = [n for n in names if n not in columns]
    if missing:
        raise fail(f"column {missing[0]!r} is not in the reply; it has {list(columns)}")
    z = None
    if "depth" in columns:
        z = -pd.to_numeric(frame["depth"], errors="coerce").to_numpy(dtype="float64")
    if "longitude" in columns:
        lon_values = pd.to_numeric(frame["longitude"], errors="coerce").to_numpy(dtype="float64")
        lon = ((lon_values + 180.0) % 360.0) - 180.0  # type: ignore[assignment]
    if "latitude" in columns:
        lat = pd.to_numeric(frame["latitude"], errors="coerce").to_numpy(dtype="float64")  # type: ignore[assignment]
    tables = []
    for name in names:
        text_values = frame[name].replace({"": np.nan, "NaN": np.nan})
        values = pd.to_numeric(text_values, errors="coerce")
        bad = values.isna() & text_values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise fail(f"column {name}: {text_values.iloc[row]!r} at row {row + 2} is not a number")
        array = values.to_numpy(dtype="float64")
        attrs = info.variables.get(name, {}) if info else {}
        for key in ("missing_value", "_FillValue"):
            if attrs.get(key):
                try:
                    code = float(attrs[key])
                except ValueError:
                    continue
                array = np.where(np.isclose(array, code, rtol=1e-6), np.nan, array)
        tables.append(
            source_rows(
                station_id=station_id,
                times=times,
                variable=name,
                values=array,
                units=units.get(name) or attrs.get("units", ""),
                z=z,
                lon=lon,
                lat=lat,
            )
        )
    return pa.concat_tables(tables)
