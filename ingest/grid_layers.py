"""GIS layer streams (`kind: vector`, `source.kind: gis`): the registry's view of `lake.layers`.

`source.url` is a Shapefile, GeoJSON or GeoPackage (file:// or a path); `source.crs` gives the
CRS of a file without one. The layer id is the stream id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ingest.grid_sources import GisSource
from lake.errors import LakeError
from lake.layers import LayerInfo, ingest_layer
from lake.records import HarvestLog, HarvestRecord
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


def harvest_layer_stream(storage: Storage, stream: Stream) -> list[HarvestRecord]:
    """Ingest a layer stream and record the attempt in the harvest log."""
    started = datetime.now(UTC)
    try:
        info = ingest_layer_stream(storage, stream)
        record = HarvestRecord(
            stream_id=stream.id,
            label="layer",
            url=stream.source.url or "",
            started_at=started,
            finished_at=datetime.now(UTC),
            status="ok",
            rows_in=info.features,
            rows_added=0,  # not observation rows: features are counted in rows_in
        )
    except LakeError as exc:
        log.error("stream=%s layer ingest failed: %s", stream.id, exc)
        record = HarvestRecord(
            stream_id=stream.id,
            label="layer",
            url=stream.source.url or "",
            started_at=started,
            finished_at=datetime.now(UTC),
            status="failed",
            error=str(exc),
        )
    HarvestLog(storage).add([record])
    return [record]
