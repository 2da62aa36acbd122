"""GIS layer streams (`kind: vector`, `source.kind: gis`): the registry's view of `lake.layers`.

`source.url` is a Shapefile, GeoJSON or GeoPackage (file:// or a path); `source.crs` gives the
CRS of a file without one. The layer id is the stream id.
"""

from __future__ import annotations

import logging

from ingest.grid_sources import GisSource
from lake.layers import LayerInfo, ingest_layer
from lake.registry import Stream
from lake.storage import Storage

log = logging.getLogger(__name__)


def ingest_layer_stream(storage: Storage, stream: Stream) -> LayerInfo:
    """Store the stream's GIS file as the layer named after the stream."""
    url = stream.source.url or ""
    GisSource().requests(stream, None, None)
    return ingest_layer(
        storage, stream.id, url, title=stream.title, assume_crs=stream.source.params.get("crs")
    )
