"""Grid source kinds as the registry and `lake check` see them: which URLs a stream reads.

Kept apart from `ingest.grids` (which needs xarray and netCDF4) so the CLI can validate a
registry without loading the grid stack.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from ingest.base import Request, utc
from lake.errors import ConfigError, ParseError
from lake.registry import Stream

GRID_KINDS = ("netcdf", "opendap", "griddap", "thredds")


def griddap_url(stream: Stream, start: datetime | None = None, end: datetime | None = None) -> str:
    """The ERDDAP griddap `.nc` request for a stream's dataset, variables, time and bbox.

    `start`/`end` (a backfill's window, or the newest stored time so a poll asks for every
    step since: a missed poll catches up) replace the registry's `time`, whose default is
    the newest step ERDDAP has (`last`).
    """
    p = stream.source.params
    base = (stream.source.url or "").rstrip("/")
    dataset = p.get("dataset")
    if not dataset:
        raise ConfigError("griddap source needs 'dataset'", stream=stream.id, field="source")
    if base.startswith("file://"):
        return f"{base}/{p.get('file') or f'griddap/{dataset}.nc'}"
    variables = p.get("variables") or [v.source for v in stream.variables]
    if not variables:
        raise ConfigError("griddap source needs 'variables'", stream=stream.id, field="source")
    t0, t1 = (p.get("time") or ["last", "last"])[:2]
    if start is not None:
        t0, t1 = _erddap_time(start), "last"
    if end is not None:
        t1 = _erddap_time(end)
    w, s, e, n = p.get("bbox") or [None, None, None, None]
    dims = [f"[({t0}):1:({t1})]"]
    if "altitude" in p:
        dims.append(f"[({p['altitude']}):1:({p['altitude']})]")
    if s is not None:
        dims += [f"[({s}):1:({n})]", f"[({w}):1:({e})]"]
    query = ",".join(v + "".join(dims) for v in variables)
    return f"{base}/griddap/{dataset}.nc?{query}"


def _erddap_time(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_urls(
    stream: Stream, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """The URLs a grid stream reads, in time order (a griddap request asks for
    `start`..`end` when given)."""
    kind = stream.source.kind
    if kind not in GRID_KINDS:
        raise ConfigError(
            f"not a grid source kind {kind!r}; grid kinds: {list(GRID_KINDS)}",
            stream=stream.id,
            field="source.kind",
        )
    if not stream.source.url:
        raise ConfigError("grid source needs a url", stream=stream.id, field="source.url")
    if kind == "griddap":
        return [griddap_url(stream, start, end)]
    files = stream.source.params.get("files")
    if files:
        base = stream.source.url.rstrip("/")
        return [f"{base}/{f}" for f in files]
    return [stream.source.url]


def _name(url: str) -> str:
    return Path(unquote(urlparse(url).path)).name or url


class GridSource:
    """Lets `lake check` validate grid streams and the harvest route them to `ingest_grid`.

    Grids are not rows: `parse` is never called by the time-series harvest, because
    `coastlake.harvest` sends `kind: grid` streams to `harvest_grid_stream` instead.
    """

    kind: ClassVar[str] = "netcdf"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        return [Request(url=u, label=_name(u)) for u in source_urls(stream, since, until)]

    def parse(self, stream: Stream, raw: Any, raw_file: str) -> Any:
        raise ParseError(
            source=stream.id,
            file=raw_file,
            what="a grid source is ingested with `lake grid ingest`, not as rows",
        )

    def stations(self, stream: Stream) -> list[Any]:
        return []


def grid_source_kinds() -> dict[str, type]:
    """Source kinds this module reads, for the harvester registry."""
    return {kind: type(f"GridSource_{kind}", (GridSource,), {"kind": kind}) for kind in GRID_KINDS}


class GisSource:
    """Validates `gis` sources for `lake check`; layers are stored by `harvest_layer_stream`."""

    kind: ClassVar[str] = "gis"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        if not stream.source.url:
            raise ConfigError("a gis source needs a url", stream=stream.id, field="source.url")
        return [Request(url=stream.source.url, label="layer")]

    def parse(self, stream: Stream, raw: Any, raw_file: str) -> Any:
        raise ParseError(source=stream.id, file=raw_file, what="a GIS layer is not rows")

    def stations(self, stream: Stream) -> list[Any]:
        return []
