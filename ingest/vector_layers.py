"""GIS layer streams (`kind: vector`, `source.kind: gis`): the registry's view of `lake.layers`.

`source.url` is a Shapefile, a zipped Shapefile, a GeoJSON or a GeoPackage, on a web server
(http/https) or in a folder (file:// or a path); `source.crs` gives the CRS of a file
without one. The layer id is the stream id.

Every file is fetched like a harvested response (timeouts, retries, size bounds) and its
bytes kept in the raw zone (unless `retention.keep_raw` is off), so the layer can be traced
to exactly what the provider served.
A Shapefile at a URL is several files: its `.shx` and `.dbf` are fetched beside the `.shp`
(a missing one fails naming it), `.prj` and `.cpg` when the server has them.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from ingest.base import Request
from ingest.fetch import fetch
from ingest.grid_sources import GisSource
from lake.errors import FetchError, ParseError
from lake.layers import LayerInfo, read_source, write_layer
from lake.raw import RawZone
from lake.registry import Stream
from lake.storage import Storage

log = logging.getLogger(__name__)

#: Sidecar files of a Shapefile: the layer cannot be read without these.
REQUIRED_SIDECARS = (".shx", ".dbf")
#: ... and these say its CRS and text encoding when the provider has them.
OPTIONAL_SIDECARS = (".prj", ".cpg")


def ingest_layer_stream(storage: Storage, stream: Stream) -> LayerInfo:
    """Fetch the stream's GIS file(s), keep them in the raw zone, store the layer named
    after the stream. Raises FetchError or ParseError naming the file; the stored layer is
    untouched then."""
    url = stream.source.url or ""
    GisSource().requests(stream, None, None)
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="layer-") as folder:
        local, raw_ids = fetch_layer_files(storage, stream, url, Path(folder))
        gdf = read_source(stream.id, local, stream.source.params.get("crs"))
    log.info("stream=%s layer from %s: raw %s", stream.id, url, ", ".join(raw_ids))
    return write_layer(storage, stream.id, gdf, title=stream.title, source=url)


def fetch_layer_files(
    storage: Storage, stream: Stream, url: str, folder: Path
) -> tuple[Path, list[str]]:
    """The layer's file(s) fetched into `folder` under their own names and kept in the raw
    zone; returns the path to read and the raw ids."""
    name = _name(url)
    raw_ids = [_fetch_to(storage, stream, url, folder / name)]
    if name.lower().endswith(".shp"):
        stem = url[: -len(".shp")]
        for suffix in (*REQUIRED_SIDECARS, *OPTIONAL_SIDECARS):
            target = folder / (name[: -len(".shp")] + suffix)
            problem = ""
            for sidecar in _sidecar_urls(stem, url, suffix):
                try:
                    raw_ids.append(_fetch_to(storage, stream, sidecar, target))
                    break
                except FetchError as exc:
                    problem = problem or exc.what
            else:
                if suffix in REQUIRED_SIDECARS:
                    raise ParseError(
                        source=stream.id,
                        url=_sidecar_urls(stem, url, suffix)[0],
                        what=f"a Shapefile needs its {suffix} beside the .shp: {problem}",
                    )
                log.info("stream=%s: no %s beside %s (%s)", stream.id, suffix, name, problem)
    return folder / name, raw_ids


def _sidecar_urls(stem: str, url: str, suffix: str) -> list[str]:
    """Where a sidecar may be: in the case the .shp's extension is written in, then the
    other (providers mix them: `x.shp` beside `x.CPG`)."""
    upper = url[-len(".shp") :].isupper()
    first, other = (suffix.upper(), suffix) if upper else (suffix, suffix.upper())
    return [stem + first, stem + other]


def _fetch_to(storage: Storage, stream: Stream, url: str, target: Path) -> str:
    raw = fetch(stream.id, Request(url=url, label=target.name))
    if raw is None:  # pragma: no cover - no validators are sent
        raise FetchError(source=stream.id, url=url, what="answered 304 with no body")
    if stream.retention.keep_raw:
        RawZone(storage).put(raw)
    target.write_bytes(raw.body)
    return raw.raw_id


def _name(url: str) -> str:
    """The file name a URL serves (its last path segment)."""
    name = PurePosixPath(unquote(urlparse(url).path)).name
    return name or "layer"
