"""The harvester protocol every source kind follows, and the values passed between stages.

fetch (bytes and where they came from) -> raw zone (kept by content hash) -> parse (an Arrow
table named as the source names things, or a ParseError: the syntax test) -> normalize (CF
names, canonical units, UTC, z) -> write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import pyarrow as pa

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
class RawResponse:
    """The bytes a source sent and where and when they came from."""

    stream_id: str
    url: str
    body: bytes
    fetched_at: datetime
    content_type: str | None = None
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    label: str = ""

    @property
    def raw_id(self) -> str:
        """Content hash: the same bytes always have the same id, so they are kept once."""
        return hashlib.sha256(self.body).hexdigest()


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
    entries naming its `kind`."""

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
