"""Files a provider contributes to one of its streams, read like a harvest of that stream.

A contribution is the stream itself with one difference: its source is the file the
provider sent (`contribution_stream`), so the harvest job takes it through the same steps
as any harvest — raw zone, syntax test, normalize, QC, one merge, the harvest log — and
the values land in the stream's dataset. The log's label names the provider and the file.

What a file may be:
- NetCDF (CF time series, e.g. ERDDAP `.ncCF`), for any stream: read by
  `ingest.netcdf_series`, stations matched to the stream's by their `timeseries_id`;
- anything the stream's own harvester reads (a CSV for a `csv` stream, a CDMO export for
  a `nerrs` stream, an NDBC text file for an `ndbc` stream).

Every value is tagged `source: upload` with the stream's rank for uploads (default 1, above
provisional real-time values; `source.priority: {upload: N}` changes it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from ingest.base import Parsed, RawResponse, Request, StationInfo, source_rank, with_source
from ingest.netcdf_series import described_variables, is_netcdf, parse_timeseries
from ingest.normalize import CANONICAL_UNITS, VariableMapping
from lake.errors import ConfigError
from lake.registry import SourceConfig, Stream

KIND = "contribution"
#: Default rank of contributed values: above provisional real time, below final history.
UPLOAD_RANK = 1


def contribution_stream(stream: Stream, file: Path, provider: str) -> Stream:
    """`stream` reading `file` (sent by `provider`) instead of its own source."""
    if stream.source.kind == KIND:
        return stream
    source = SourceConfig.model_validate(
        {
            **stream.source.params,
            "kind": KIND,
            "url": file.resolve().as_uri(),
            "contributed_to": stream.source.model_dump(),
            "contributed_by": provider,
        }
    )
    return stream.model_copy(update={"source": source})


def original_stream(stream: Stream) -> Stream:
    """The stream as the registry has it (its own source), from a contribution stream."""
    own = stream.source.params.get("contributed_to")
    if not isinstance(own, dict):
        raise ConfigError("not a contribution stream", stream=stream.id, field="source")
    return stream.model_copy(update={"source": SourceConfig.model_validate(own)})


def label(stream: Stream) -> str:
    """The harvest log's label of a contribution: who sent which file."""
    name = Path(stream.source.url or "upload").name
    return f"upload by {stream.source.params.get('contributed_by', '?')}: {name}"


class Contribution:
    """Reads one contributed file for a stream (kind `contribution`, made by
    `contribution_stream`; never written in a registry)."""

    kind: ClassVar[str] = KIND

    def __init__(self) -> None:
        #: Variables of the NetCDF file just parsed, by their CF attributes.
        self.file_mapping: dict[str, VariableMapping] = {}

    def _own(self, stream: Stream) -> Any:
        from ingest.kinds import get_harvester  # the registry of kinds lists this one

        return get_harvester(original_stream(stream).source.kind)

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        return [Request(url=stream.source.url or "", label=label(stream))]

    def stations(self, stream: Stream) -> list[StationInfo]:
        stations: list[StationInfo] = self._own(stream).stations(original_stream(stream))
        return stations

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        """For a NetCDF file, its own `standard_name` and `units` attributes (CF names the
        lake knows); else the stream's harvester's mapping."""
        own = self._own(stream)
        mapping = getattr(own, "column_mapping", None)
        if self.file_mapping:  # the registry's `variables` still override it
            return dict(self.file_mapping)
        found: dict[str, VariableMapping] = mapping(original_stream(stream)) if mapping else {}
        return found

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        own_stream = original_stream(stream)
        self.file_mapping = {}
        if is_netcdf(raw.body):
            rows = self._parse_netcdf(stream, own_stream, raw, raw_file)
            parsed = Parsed(rows=rows)
        else:
            # Harvesters that read one station per file take it from the request's label.
            relabelled = RawResponse(
                stream_id=raw.stream_id,
                url=raw.url,
                body=raw.body,
                fetched_at=raw.fetched_at,
                label=_own_label(own_stream),
            )
            parsed = self._own(stream).parse(own_stream, relabelled, raw_file)
        rank = source_rank(own_stream, "upload", UPLOAD_RANK)
        return Parsed(rows=with_source(parsed.rows, "upload", rank), stations=parsed.stations)

    def _parse_netcdf(
        self, stream: Stream, own_stream: Stream, raw: RawResponse, raw_file: str
    ) -> Any:
        known = described_variables(raw.body, CANONICAL_UNITS)
        self.file_mapping = {
            name: VariableMapping(standard_name, units or None)
            for name, (standard_name, units) in known.items()
        }
        stations = self.stations(stream)
        ids = {s.station_id.rsplit(":", 1)[-1].lower(): s.station_id for s in stations}
        ids |= {str(s.wmo_id).lower(): s.station_id for s in stations if s.wmo_id}
        return parse_timeseries(
            raw.body,
            source=stream.id,
            url=raw.url,
            raw_file=raw_file,
            station_ids=ids,
            default_station=stations[0].station_id if len(stations) == 1 else None,
            variables=[v.source for v in own_stream.variables] or None,
        )


def _own_label(stream: Stream) -> str:
    """The label a harvester of one station per file expects: the stream's station id, and
    its product where the source has several (CO-OPS reads `<station> <product>`)."""
    params = stream.source.params
    items = params.get("stations") or ([params["station"]] if "station" in params else [])
    if len(items) != 1:
        return ""
    item = items[0]
    station = str(item["id"]) if isinstance(item, dict) else str(item)
    product = params.get("product")
    return f"{station} {product}" if isinstance(product, str) else station
