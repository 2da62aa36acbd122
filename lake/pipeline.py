"""The whole path from sources to tables, composed: ingest, then QC, then write, then
whatever must follow a harvest (the catalog). Later stages plug in here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pyarrow as pa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.harvest import HarvestOptions, harvest_streams
from ingest.kinds import is_harvested
from lake.records import HarvestRecord
from lake.registry import Registry, Stream
from lake.storage import Storage

log = logging.getLogger(__name__)

#: Run on normalized rows before they are written (QC adds its flags here).
BEFORE_WRITE: list[Callable[[Storage, Stream, pa.Table], pa.Table]] = []
#: Run after a harvest with the records (the catalog rebuilds itself here).
AFTER_HARVEST: list[Callable[[Storage, Registry, list[HarvestRecord]], None]] = []


def _rebuild_catalog(storage: Storage, registry: Registry, records: list[HarvestRecord]) -> None:
    """Rebuild the STAC catalog and its search index (issue 7); stac/ imported only here."""
    from stac.build import rebuild_after_harvest

    rebuild_after_harvest(storage, registry, records)


AFTER_HARVEST.append(_rebuild_catalog)


def _register_qc() -> None:
    """QARTOD flags on every value before it is written (issue 5); absent qc/: no flags."""
    try:
        from qc.live import qc_before_write
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("qc"):
            return
        raise
    BEFORE_WRITE.append(qc_before_write)


_register_qc()

#: Streams that are not rows go to their own ingest, by `kind` (grids, GIS layers: issue 6).
KIND_HARVESTS: dict[str, Callable[[Storage, Stream], list[HarvestRecord]]] = {}


def _register_grids() -> None:
    """`kind: grid` into Icechunk, `kind: vector` into GeoParquet (issue 6)."""
    from ingest.grid_layers import harvest_layer_stream
    from ingest.grids import harvest_grid_stream

    KIND_HARVESTS["grid"] = harvest_grid_stream
    KIND_HARVESTS["vector"] = harvest_layer_stream


_register_grids()


def run_harvest(
    storage: Storage,
    registry: Registry,
    streams: Iterable[Stream],
    options: HarvestOptions = HarvestOptions(),
    *,
    progress: bool = True,
) -> list[HarvestRecord]:
    """Harvest `streams` with QC and post-harvest steps; shows a progress bar."""
    # External feeds are catalog entries only: nothing to fetch.
    streams = [s for s in streams if is_harvested(s.source.kind)]
    others = [s for s in streams if s.kind.value in KIND_HARVESTS]
    streams = [s for s in streams if s.kind.value not in KIND_HARVESTS]

    def before_write(stream: Stream, rows: pa.Table) -> pa.Table:
        for step in BEFORE_WRITE:
            rows = step(storage, stream, rows)
        return rows

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("harvesting", total=len(streams))

        def done(stream: Stream, records: list[HarvestRecord]) -> None:
            bar.update(task, advance=1, description=f"harvested {stream.id}")

        records = harvest_streams(
            storage, streams, options, before_write=before_write, on_done=done
        )
    for other in others:
        records = [*records, *KIND_HARVESTS[other.kind.value](storage, other)]
    for step in AFTER_HARVEST:
        step(storage, registry, records)
    return records
