"""A generic CSV / text harvester, configured entirely in the registry.

For feeds with no harvester of their own: a data manager names the file, its delimiter,
which columns hold time (and in what format and time zone), station, position and depth,
the missing-value codes, and (under `variables`) which columns to keep, their CF names and
units. The time zone is required unless the times carry one: a feed in local time read as
UTC would be silently wrong by hours.

    source:
      kind: csv
      url: https://example.org/feeds          # or a folder (file://) with the same layout
      path: latest_obs.txt                     # optional, appended to url
      delimiter: whitespace                    # or "," (default), ";", "\t"
      header_prefix: "#"                       # stripped from the header line
      skip_rows: 1                             # lines after the header (a units line)
      time_columns: [YYYY, MM, DD, hh, mm]     # or time_column: time
      time_format: "%Y %m %d %H %M"            # strptime, or ISO8601 (default)
      timezone: UTC                            # or -06:00, Etc/GMT+6, America/Chicago
      station_column: STN                      # or station: {id, name, lon, lat}
      station_urn: "urn:ioos:station:wmo:{}"   # how a station code becomes an id
      lon_column: LON
      lat_column: LAT
      z_column: depth                          # with z_positive: down|up
      missing: [MM, "-999"]
      flag_prefix: F_                          # flags kept verbatim in provider_flag
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

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
    source_rows,
)
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream
from lake.stations import station_urn as ioos_station_urn


@dataclass(frozen=True)
class TextSpec:
    """How to read one delimited text feed (see the module docstring)."""

    variables: dict[str, str]  # source column -> units the source uses
    delimiter: str = ","
    header_prefix: str = ""
    skip_rows: int = 0
    time_columns: tuple[str, ...] = ("time",)
    time_format: str = "ISO8601"
    timezone: str | None = None
    station_column: str | None = None
    station: dict[str, Any] = field(default_factory=dict)
    station_urn: str = ioos_station_urn("{authority}", "{}")
    authority: str = "local"
    lon_column: str | None = None
    lat_column: str | None = None
    z_column: str | None = None
    z_positive: str = "up"
    missing: tuple[str, ...] = ()
    flag_prefix: str | None = None
    flag_columns: dict[str, str] = field(default_factory=dict)
    lon_west_positive: bool = False

    def needed_columns(self) -> list[str]:
        """The columns the feed must have: variables, times, station, position, depth."""
        optional = (self.station_column, self.lon_column, self.lat_column, self.z_column)
        return [*self.variables, *self.time_columns, *(c for c in optional if c)]

    def urn(self, code: str) -> str:
        return self.station_urn.replace("{authority}", self.authority).format(code.strip().lower())

    @classmethod
    def from_params(cls, stream: Stream, params: dict[str, Any]) -> TextSpec:
        if not stream.variables:
            raise ConfigError(
                "a csv source needs 'variables' (source column, standard_name, units)",
                stream=stream.id,
                field="variables",
            )
        times = params.get("time_columns") or [params.get("time_column", "time")]
        station = params.get("station") or {}
        if not params.get("station_column") and not station.get("id"):
            raise ConfigError(
                "a csv source needs 'station_column' or 'station: {id: ...}'",
                stream=stream.id,
                field="source.station",
            )
        return cls(
            variables={v.source: v.units for v in stream.variables},
            delimiter=str(params.get("delimiter", ",")),
            header_prefix=str(params.get("header_prefix", "")),
            skip_rows=int(params.get("skip_rows", 0)),
            time_columns=tuple(str(t) for t in times),
            time_format=str(params.get("time_format", "ISO8601")),
            timezone=str(params["timezone"]) if params.get("timezone") is not None else None,
            station_column=params.get("station_column"),
            station=dict(station),
            station_urn=str(params.get("station_urn", ioos_station_urn("{authority}", "{}"))),
            authority=str(params.get("naming_authority", stream.id)),
            lon_column=params.get("lon_column"),
            lat_column=params.get("lat_column"),
            z_column=params.get("z_column"),
            z_positive=str(params.get("z_positive", "up")),
            missing=tuple(str(m) for m in params.get("missing", ())),
            flag_prefix=params.get("flag_prefix"),
            flag_columns=dict(params.get("flag_columns", {})),
            lon_west_positive=bool(params.get("lon_west_positive", False)),
        )


def _offset(tz: str) -> str:
    """'+0', '-6', '-5.5', '-06:00' -> '+HH:MM'; zone names pass through."""
    text = tz.strip()
    if text and text[0] in "+-" and text[1:].replace(":", "").replace(".", "").isdigit():
        if ":" in text:
            hours, _, minutes = text[1:].partition(":")
            return f"{text[0]}{int(hours):02d}:{int(minutes):02d}"
        total = round(abs(float(text)) * 60)
        return f"{text[0]}{total // 60:02d}:{total % 60:02d}"
    return text


def localize(times: pd.Series, tz: str | None, fail: Any) -> pd.Series:
    """Times to UTC: aware times are converted; naive ones need `tz`, else ParseError."""
    if getattr(times.dt, "tz", None) is not None:
        return times.dt.tz_convert("UTC")
    if not tz:
        raise fail(
            "times carry no time zone and source.timezone is not set: "
            "say which zone the feed uses (UTC, -06:00, America/Chicago)"
        )
    zone = _offset(tz)
    try:
        if zone[:1] in "+-":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = zone[1:].split(":")
            shift = pd.Timedelta(hours=int(hours), minutes=int(minutes)) * sign
            return (times - shift).dt.tz_localize("UTC")
        return times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    except (ValueError, TypeError, KeyError) as exc:
        raise fail(f"time zone {tz!r} is not known: {exc}") from None


def parse_delimited(
    body: bytes, *, stream_id: str, url: str, raw_file: str, spec: TextSpec
) -> pa.Table:
    """A delimited text file to long source-named rows, checked column by column."""

    def fail(what: str) -> ParseError:
        return ParseError(source=stream_id, url=url, file=raw_file, what=what)

    text = data_text(
        body, stream_id=stream_id, url=url, raw_file=raw_file, expected="a delimited text file"
    )
    sep = r"\s+" if spec.delimiter == "whitespace" else spec.delimiter
    header, body_lines = _header_and_rows(text, sep, spec, fail)
    return frame_rows(_frame(body_lines, header, sep, fail), spec, fail)


def frame_rows(frame: pd.DataFrame, spec: TextSpec, fail: Callable[[str], ParseError]) -> pa.Table:
    """A table of text columns (a delimited file's rows, an HTML table) to long
    source-named rows: times in UTC, numbers checked, the spec's station and position."""
    absent = [c for c in spec.needed_columns() if c not in frame.columns]
    if absent:
        raise fail(
            f"column {absent[0]!r} is not in the table; its columns are {list(frame.columns)}"
        )
    times = _times(frame, spec, fail)
    missing = {"", *spec.missing}

    def numbers(col: str) -> np.ndarray:
        return _numbers(frame, col, missing, fail)

    if spec.station_column:
        station_ids: Any = frame[spec.station_column].map(spec.urn).to_numpy()
    else:
        station_ids = spec.urn(str(spec.station["id"]))
    lon: Any = numbers(spec.lon_column) if spec.lon_column else spec.station.get("lon")
    if spec.lon_column and spec.lon_west_positive:
        lon = -lon
    lat: Any = numbers(spec.lat_column) if spec.lat_column else spec.station.get("lat")
    z: Any = None
    if spec.z_column:
        z = numbers(spec.z_column) * (-1.0 if spec.z_positive == "down" else 1.0)
    tables = [
        source_rows(
            station_id=station_ids,
            times=times,
            variable=col,
            values=numbers(col),
            units=units,
            z=z,
            lon=lon,
            lat=lat,
            provider_flag=_flags(frame, col, spec),
        )
        for col, units in spec.variables.items()
    ]
    return pa.concat_tables(tables) if tables else SOURCE_SCHEMA.empty_table()


def _header_and_rows(
    text: str, sep: str, spec: TextSpec, fail: Callable[[str], ParseError]
) -> tuple[list[str], list[str]]:
    """(column names, data lines): refuses a file without data rows, one whose last row
    was cut short, and one that lacks a column the spec names."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    head = lines[0].removeprefix(spec.header_prefix) if spec.header_prefix else lines[0]
    header = head.split() if sep == r"\s+" else [h.strip() for h in head.split(sep)]
    body_lines = lines[1 + spec.skip_rows :]
    if not body_lines:
        raise fail("the file has a header but no data rows")
    last = body_lines[-1].split() if sep == r"\s+" else body_lines[-1].split(sep)
    if len(last) < len(header):
        raise fail(
            f"row {len(lines)} has {len(last)} fields, the header {len(header)} (truncated file?)"
        )
    absent = [c for c in spec.needed_columns() if c not in header]
    if absent:
        raise fail(f"column {absent[0]!r} is not in the file; its columns are {header}")
    return header, body_lines


def _frame(
    body_lines: list[str], header: list[str], sep: str, fail: Callable[[str], ParseError]
) -> pd.DataFrame:
    """The data rows as text columns (the C parser where the delimiter allows it)."""
    try:
        return pd.read_csv(
            io.StringIO("\n".join(body_lines)),
            sep=sep,
            header=None,
            names=header,
            dtype=str,
            keep_default_na=False,
            engine="c" if len(sep) == 1 or sep == r"\s+" else "python",
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise fail(f"rows do not match the header: {exc}") from None


def _times(frame: pd.DataFrame, spec: TextSpec, fail: Callable[[str], ParseError]) -> pd.Series:
    """UTC times from the spec's time columns, joined by spaces and read in its format."""
    stamp = frame[spec.time_columns[0]].str.strip()
    for col in spec.time_columns[1:]:
        stamp = stamp + " " + frame[col].str.strip()
    try:
        if spec.time_format == "ISO8601":
            times = pd.to_datetime(stamp, format="ISO8601")
        else:
            times = pd.to_datetime(stamp, format=spec.time_format)
    except (ValueError, TypeError) as exc:
        raise fail(
            f"time {'+'.join(spec.time_columns)} not in format {spec.time_format!r}: {exc}"
        ) from None
    return localize(times, spec.timezone, fail)


def _numbers(
    frame: pd.DataFrame, col: str, missing: set[str], fail: Callable[[str], ParseError]
) -> np.ndarray:
    """A column as floats, `missing` codes as NaN; anything else that is not a number is
    a ParseError naming the first such row."""
    raw = frame[col].str.strip()
    raw = raw.where(~raw.isin(missing))
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise fail(f"column {col}: {raw.iloc[row]!r} at data row {row + 1} is not a number")
    return values.to_numpy(dtype="float64")


def _flags(frame: pd.DataFrame, col: str, spec: TextSpec) -> np.ndarray | None:
    """The provider's flags for `col`, verbatim (empty as null), if the feed has them."""
    flag_col = spec.flag_columns.get(col) or (
        f"{spec.flag_prefix}{col}" if spec.flag_prefix else None
    )
    if flag_col and flag_col in frame.columns:
        return frame[flag_col].str.strip().replace("", None).to_numpy()
    return None


def stations_in(rows: pa.Table, stream: Stream) -> list[StationInfo]:
    """One StationInfo per station code in a feed, at its last reported position, so a
    multi-station feed puts its stations on the map without listing them in the registry."""
    if rows.num_rows == 0:
        return []
    last = (
        rows.select(["station_id", "lon", "lat", "time"])
        .group_by("station_id", use_threads=False)
        .aggregate([("lon", "last"), ("lat", "last")])
    )
    return [
        StationInfo(
            station_id=r["station_id"],
            lon=r["lon_last"],
            lat=r["lat_last"],
            provider=stream.provider.name,
        )
        for r in last.to_pylist()
    ]


class TextFile:
    """Generic CSV / text feed (kind `csv`)."""

    kind: ClassVar[str] = "csv"

    def _url(self, stream: Stream) -> str:
        if not stream.source.url:
            raise ConfigError("a csv source needs url", stream=stream.id, field="source.url")
        path = stream.source.params.get("path")
        base = stream.source.url
        return f"{base.rstrip('/')}/{str(path).lstrip('/')}" if path else base

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        TextSpec.from_params(stream, stream.source.params)  # config errors before fetching
        return [Request(url=self._url(stream), label=stream.source.params.get("path", ""))]

    def stations(self, stream: Stream) -> list[StationInfo]:
        spec = TextSpec.from_params(stream, stream.source.params)
        if not spec.station:
            return []
        s = spec.station
        return [
            StationInfo(
                station_id=spec.urn(str(s["id"])),
                name=s.get("name"),
                lon=s.get("lon"),
                lat=s.get("lat"),
                wmo_id=s.get("wmo_id"),
                provider=stream.provider.name,
                platform=s.get("platform"),
            )
        ]

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        return {}

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        spec = TextSpec.from_params(stream, stream.source.params)
        rows = parse_delimited(
            raw.body, stream_id=stream.id, url=raw.url, raw_file=raw_file, spec=spec
        )
        return Parsed(rows=rows, stations=stations_in(rows, stream) if spec.station_column else ())
