"""A provider's file into its stream's dataset, through the harvest job (`lake contribute`
and the upload route both call `contribute`).

The file goes through the raw zone, the syntax test, normalization, QC and one merge like
any harvest, and the harvest log names the provider and the file. A file that fails any
step writes no value: the caller gets the failed record, naming the file and the fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from coastlake.harvest import HarvestOptions, run_harvest
from ingest.contribution import contribution_stream
from ingest.kinds import is_harvested
from lake.errors import RequestError
from lake.harvest_log import HarvestRecord
from lake.registry import Kind, Registry
from lake.storage import Storage

#: A contribution is merged whole, like a backfill: its values may lie anywhere in time,
#: inside what the lake already holds (corrections), not only after it.
EVERY_TIME = datetime(1800, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Contributed:
    """What became of a contributed file: its record in the harvest log."""

    record: HarvestRecord

    @property
    def ok(self) -> bool:
        return self.record.status in ("ok", "unchanged")


def contribute(
    storage: Storage, registry: Registry, stream_id: str, file: Path, provider: str
) -> Contributed:
    """Harvest `file` (sent by `provider`) into `stream_id`'s dataset; never raises for a
    bad file (the record says what was wrong), RequestError for a stream that cannot take
    contributions."""
    stream = registry.get(stream_id)
    if stream.kind in (Kind.grid, Kind.vector) or not is_harvested(stream.source.kind):
        raise RequestError(
            f"stream {stream_id!r} is a {stream.kind.value} stream "
            f"({stream.source.kind}); contributions go to streams of observations "
            "(time series, trajectories, profiles)",
            status=400,
        )
    options = HarvestOptions(since=EVERY_TIME, until=None, conditional=False)
    upload = contribution_stream(stream, file, provider)
    records = run_harvest(storage, registry, [upload], options, progress=False)
    [record] = [r for r in records if r.label.startswith("upload by")] or records[-1:]
    return Contributed(record)
