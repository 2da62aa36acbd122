"""The harvester protocol every source kind follows, and the values passed between stages.

fetch (bytes and where they came from) -> raw zone (kept by content hash) -> parse (an Arrow
table named as the source names things, or a ParseError: the syntax test) -> normalize (CF
names, canonical units, UTC, z) -> write.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from lake.errors import ConfigError, ParseError
from lake.raw import RawResponse
from lake.registry import Stream

#: Columns of what `Harvester.parse` returns: long rows still in the source's own terms.
SOURCE_SCHEMA = pa.schema(
    [
        pa.field("station_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("z", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("lat", pa.float64()),
        pa.field("variable", pa.string()),  # the source's own column name, e.g. WTMP
        pa.field("value", pa.float64()),
        pa.field("units", pa.string()),  # the source's own unit string, e.g. degC, ft
        pa.field("provider_flag", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class Request:
    """One thing to fetch for a stream: a URL and a label for logs (a station, a year)."""

    url: str
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a source tells us about a station, for the catalog and the maps."""

    station_id: str
    name: str | None = None
    lon: float | None = None
    lat: float | None = None
    wmo_id: str | None = None
    provider: str | None = None
    platform: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed response: source-named long rows plus any station metadata it carried."""

    rows: pa.Table
    stations: Sequence[StationInfo] = ()


class Harvester(Protocol):
    """One kind of source. Adding a source is one module with one of these plus registry
    entries naming its `kind`.

    Optional methods harvest_stream uses when present: `column_mapping(stream)` (source
    column -> VariableMapping defaults, overridden by registry `variables`), the
    MetadataSource pair (`metadata_requests`, `parse_metadata`), and `no_data(FetchError)`
    (True when an error reply only means "nothing in this window", as ERDDAP's 404).
    """

    kind: ClassVar[str]

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        """What to fetch for this stream, split into pieces the source accepts."""
        ...

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        """Source bytes to long rows; raises ParseError naming stream, URL and raw file."""
        ...

    def stations(self, stream: Stream) -> list[StationInfo]:
        """Station metadata known from the registry or the source's metadata service."""
        ...


class MetadataSource(Protocol):
    """Optional part of a harvester: a metadata service read before the data (CO-OPS mdapi,
    ERDDAP info pages). harvest_stream calls these when a harvester has them; a failure is
    recorded and the data are still harvested with what the registry says."""

    def metadata_requests(self, stream: Stream) -> list[Request]:
        """What to fetch to learn about the stream's stations and variables."""
        ...

    def parse_metadata(self, stream: Stream, raw: RawResponse, raw_file: str) -> list[StationInfo]:
        """Station metadata from one metadata response; may remember variable attributes
        for the data requests that follow. Raises ParseError if it cannot be read."""
        ...


def registry_stations(stream: Stream) -> list[dict[str, Any]]:
    """The stations a stream lists (`station: X` or `stations: [X, {id: Y, ...}]`) as dicts.

    Raises ConfigError naming the stream when it lists none.
    """
    params = stream.source.params
    items = params.get("stations") or ([params["station"]] if "station" in params else [])
    if not items:
        raise ConfigError(
            f"a {stream.source.kind} source needs 'station' or 'stations'",
            stream=stream.id,
            field="source.stations",
        )
    return [i if isinstance(i, dict) else {"id": str(i)} for i in items]


def is_file_url(url: str) -> bool:
    """True for file:// sources: an offline folder of recorded responses."""
    return url.startswith("file://")


def utc(value: datetime) -> datetime:
    """A datetime in UTC; naive values are taken as UTC (the CLI's --since/--until)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def windows(
    since: datetime, until: datetime, length: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """Split [since, until] into consecutive windows no longer than `length`.

    Sources cap how much one request may ask for (CO-OPS: 31 days of 6-minute data), so a
    backfill becomes several requests; windows share their boundaries, and the merge on
    write makes the repeated boundary row harmless.
    """
    start, end = utc(since), utc(until)
    if end < start:
        raise ValueError(
            f"window ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})"
        )
    while True:
        stop = min(start + length, end)
        yield start, stop
        if stop >= end:
            return
        start = stop


def text_of(body: bytes) -> str:
    """Response text: gunzipped if the bytes are gzip (NDBC history is served as .txt.gz),
    decoded as UTF-8 or, failing that, Latin-1 (what NOAA services declare)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def looks_like_html(text: str) -> bool:
    """True when a body is an HTML page (an error page or a login wall) rather than data."""
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


def data_text(body: bytes, *, stream_id: str, url: str, raw_file: str, expected: str) -> str:
    """The response as text, or the syntax test's ParseError for an empty body or an HTML page
    where `expected` (e.g. 'JSON', 'tabledap CSV') was due."""
    text = text_of(body)
    if not text.strip():
        raise ParseError(source=stream_id, url=url, file=raw_file, what="the response is empty")
    if looks_like_html(text):
        raise ParseError(
            source=stream_id,
            url=url,
            file=raw_file,
            what=f"expected {expected}, got an HTML page (error page?)",
        )
    return text


def source_rows(
    *,
    station_id: object,
    times: object,
    variable: str,
    values: object,
    units: str,
    z: object = None,
    lon: float | None = None,
    lat: float | None = None,
    provider_flag: object = None,
) -> pa.Table:
    """One variable's long rows in SOURCE_SCHEMA; scalars are repeated to the length of
    `values`, arrays are used as they are."""
    vals = pa.array(values, pa.float64(), from_pandas=True)
    n = len(vals)

    def rep(value: object, typ: pa.DataType) -> pa.Array:
        if value is None or isinstance(value, str | int | float):
            return pa.repeat(pa.scalar(value, typ), n)
        return pa.array(value, typ, from_pandas=True)

    return pa.table(
        {
            "station_id": rep(station_id, pa.string()),
            "time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "z": rep(z, pa.float64()),
            "lon": rep(lon, pa.float64()),
            "lat": rep(lat, pa.float64()),
            "variable": rep(variable, pa.string()),
            "value": vals,
            "units": rep(units, pa.string()),
            "provider_flag": rep(provider_flag, pa.string()),
        },
        schema=SOURCE_SCHEMA,
    )


def source_rank(stream: Stream, source: str, default: int) -> int:
    """How much a stream trusts one of its provider's products (higher wins a key).

    The rule is the stream's: `source.priority: {realtime2: 0, monthly: 1, yearly: 2}` in the
    registry overrides the harvester's defaults, so a provider whose real-time feed is
    already quality-controlled can say so.
    """
    rules = stream.source.params.get("priority") or {}
    if not isinstance(rules, dict):
        raise ConfigError(
            "source.priority must map product names to ranks, e.g. {realtime2: 0, yearly: 2}",
            stream=stream.id,
            field="source.priority",
        )
    value = rules.get(source, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"rank of {source!r} must be a whole number, not {value!r}",
            stream=stream.id,
            field="source.priority",
        ) from None


def with_source(rows: pa.Table, source: object, rank: object) -> pa.Table:
    """Rows tagged with the product that answered (`source`) and its rank: on write a
    stored value is replaced only by one of equal or higher rank, so a later real-time poll
    never undoes the provider's quality-controlled history. Scalars or per-row arrays."""
    n = rows.num_rows

    def column(value: object, typ: pa.DataType) -> pa.Array:
        if value is None or isinstance(value, str | int):
            return pa.repeat(pa.scalar(value, typ), n)
        return pa.array(value, typ, from_pandas=True)

    for name, value, typ in (("source", source, pa.string()), ("source_rank", rank, pa.int8())):
        if name in rows.column_names:
            rows = rows.drop_columns([name])
        rows = rows.append_column(name, column(value, typ))
    return rows
