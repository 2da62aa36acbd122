"""The harvest job: from the sources' bytes to rows in the lake, as plain calls in order.

A harvest runs as one cycle over every stream due:

1. read every request (`coastlake.reading`), several at a time: fetch (ingest.fetch) → keep
   the bytes in the raw zone (lake.raw) → parse, the syntax test (the stream's harvester in
   ingest/) → normalize to CF names, canonical units, UTC and z (ingest.normalize);
2. per stream: one row per key, and — in a real-time poll — only values newer than what
   the lake holds for their series (lake.series), so a 45-day real-time file does not send
   its 45 days again every ten minutes; then QARTOD flags (qc.on_write);
3. one merge into the observation table for the whole cycle (lake.tables), then the series'
   state (lake.series); one commit each, whatever the number of stations;
4. the harvest log, one record per request (lake.harvest_log), and the catalog items of the
   datasets that changed (stac.build).

One bad source is recorded and the rest go on; a failed response writes nothing to the
table, but its raw bytes are kept so a data manager can see what the source sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import httpx
import pyarrow as pa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coastlake.reading import PART_VALUES, HarvestOptions, StreamBatch, read_streams
from ingest.grids import ingest_grid
from ingest.kinds import is_harvested
from ingest.vector_layers import ingest_layer_stream
from lake.errors import LakeError
from lake.harvest_log import Attempt, HarvestLog, HarvestRecord
from lake.registry import Kind, Registry, Stream
from lake.series import SeriesTable
from lake.storage import Storage
from lake.tables import ObservationTable, WriteResult
from qc.on_write import qc_before_write
from stac.build import rebuild_after_harvest
from steward.retention import apply_retention

log = logging.getLogger(__name__)

#: The QC step: normalized rows of a stream in, rows with flags (plus re-flagged stored
#: neighbours) out. Tests of the ingest stages alone pass `qc_step=None`.
QcStep = Callable[[Storage, Stream, pa.Table], pa.Table]
#: Called after each stream's requests are read (the progress bar).
OnDone = Callable[[Stream, list[HarvestRecord]], None]


def run_harvest(
    storage: Storage,
    registry: Registry,
    streams: Iterable[Stream],
    options: HarvestOptions = HarvestOptions(),
    *,
    progress: bool = True,
) -> list[HarvestRecord]:
    """Harvest `streams` with QC, then update the catalog; shows a progress bar."""
    # External feeds are catalog entries only: nothing to fetch.
    chosen = [s for s in streams if is_harvested(s.source.kind)]
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("harvesting", total=len(chosen))

        def done(stream: Stream, records: list[HarvestRecord]) -> None:
            bar.update(task, advance=1, description=f"read {stream.id}")

        records = harvest_streams(storage, chosen, options, on_done=done)
    # Before the catalog, so it describes what the lake keeps.
    apply_retention(storage, registry, chosen)
    changed = {r.stream_id for r in records if r.rows_added or r.rows_updated}
    changed |= {r.stream_id for r in records if r.status == "ok" and r.label in ("grid", "layer")}
    if changed or not _catalog_exists(storage):
        rebuild_after_harvest(storage, registry, records)
    else:
        log.info("catalog unchanged: no dataset got new values in this harvest")
    return records


def harvest_streams(
    storage: Storage,
    streams: Iterable[Stream],
    options: HarvestOptions = HarvestOptions(),
    *,
    qc_step: QcStep | None = qc_before_write,
    on_done: OnDone | None = None,
) -> list[HarvestRecord]:
    """Harvest several streams as one cycle: one commit per table for all their values.

    A failure in one stream (or one request) never stops the rest.
    """
    streams = list(streams)
    ObservationTable(storage).create()
    grids = [s for s in streams if s.kind in (Kind.grid, Kind.vector)]
    observed = [s for s in streams if s not in grids]
    records: list[HarvestRecord] = []
    chunk: list[StreamBatch] = []
    marks = SeriesTable(storage).marks()
    with httpx.Client(follow_redirects=True) as client:
        for batch in read_streams(storage, observed, options, client, marks, on_done=on_done):
            chunk.append(batch)
            if sum(b.size for b in chunk) >= PART_VALUES:
                records += write_cycle(storage, chunk, options, qc_step)
                chunk = []
    records += write_cycle(storage, chunk, options, qc_step)
    for stream in grids:
        records.append(_harvest_grid_or_layer(storage, stream, options))
        if on_done:
            on_done(stream, records[-1:])
    HarvestLog(storage).add(records)
    return records


def harvest_stream(
    storage: Storage,
    stream: Stream,
    options: HarvestOptions = HarvestOptions(),
    *,
    qc_step: QcStep | None = qc_before_write,
) -> list[HarvestRecord]:
    """Harvest one stream (a cycle of one); returns one record per request, all logged."""
    return harvest_streams(storage, [stream], options, qc_step=qc_step)


@dataclass
class _Prepared:
    """One stream's rows ready to write, and how many each request contributes."""

    batch: StreamBatch
    rows: pa.Table
    added: dict[int, int] = field(default_factory=dict)


def write_cycle(
    storage: Storage,
    batches: list[StreamBatch],
    options: HarvestOptions,
    qc_step: QcStep | None,
) -> list[HarvestRecord]:
    """QC each stream's new rows, write the whole cycle in one commit, update the series."""
    series = SeriesTable(storage)
    marks = series.marks()
    # The spans can be trusted to say "not stored" only if the series state saw the last
    # cycle written (a writer killed between the two commits leaves it behind).
    tag = series.last_cycle()
    all_new = tag == ObservationTable(storage).last_cycle() and (
        tag is not None or not _has_rows(storage)
    )
    prepared: list[_Prepared] = []
    for batch in batches:
        rows, added, fresh = batch.rows_to_write(marks, keep_known=options.backfill)
        all_new = all_new and fresh
        if rows.num_rows and qc_step is not None:
            try:
                sent = rows.num_rows
                rows = qc_step(storage, batch.stream, rows)
                all_new = all_new and rows.num_rows == sent  # no stored neighbour re-flagged
            except Exception as exc:  # a QC failure fails this stream only
                batch.fail(_as_lake_error(exc, f"stream={batch.stream.id} QC"))
                continue
        prepared.append(_Prepared(batch, rows, added))
    result = _write(storage, [p.rows for p in prepared if p.rows.num_rows], all_new)
    if result is None:
        for p in prepared:
            p.batch.fail(LakeError("the cycle's values could not be written; see the log"))
    records: list[HarvestRecord] = []
    for batch in batches:
        done = next((p for p in prepared if p.batch is batch), None)
        records += batch.records(done.added if done and result is not None else {})
    return records


def _write(storage: Storage, pieces: list[pa.Table], all_new: bool) -> WriteResult | None:
    """One commit of every stream's rows (an append when none can be stored yet, else a
    merge), then the series' state, both tagged with the cycle; None if the write failed."""
    if not pieces:
        return WriteResult(0, 0, 0, None)
    rows = pa.concat_tables(pieces, promote_options="permissive")
    cycle = uuid.uuid4().hex
    try:
        table = ObservationTable(storage)
        result = table.write(rows, unique_keys=True, all_new=all_new, cycle=cycle)
        SeriesTable(storage).update(rows, cycle=cycle)
    except Exception as exc:  # the cycle's edge: its records say it failed, the job goes on
        _as_lake_error(exc, "writing the cycle")
        return None
    log.info(
        "wrote %d values in one commit: %d new, %d changed (table version %s)",
        result.rows_in,
        result.inserted,
        result.updated,
        result.version,
    )
    return result


def _harvest_grid_or_layer(
    storage: Storage, stream: Stream, options: HarvestOptions
) -> HarvestRecord:
    """A grid stream into its Icechunk repository, or a GIS layer into GeoParquet: one
    attempt each. Not observation rows: time steps or features are counted in rows_in."""
    label = "grid" if stream.kind is Kind.grid else "layer"
    attempt = Attempt(stream.id, label, stream.source.url or "")
    try:
        if stream.kind is Kind.grid:
            result = ingest_grid(storage, stream, since=options.since, until=options.until)
            status = "ok" if result.times_added else "unchanged"
            sources = replace(attempt, url=", ".join(result.sources))
            return sources.done(status, rows_in=result.times_added)
        return attempt.done("ok", rows_in=ingest_layer_stream(storage, stream).features)
    except LakeError as exc:
        log.error("stream=%s %s ingest failed: %s", stream.id, label, exc)
        return attempt.done("failed", error=str(exc))


def _has_rows(storage: Storage) -> bool:
    table = ObservationTable(storage)
    return table.exists() and bool(table.delta().file_uris())


def _catalog_exists(storage: Storage) -> bool:
    return storage.exists(storage.url("catalog", "catalog.json"))


def _as_lake_error(exc: Exception, where: str) -> LakeError:
    """Log an error caught at an edge; a non-lake error becomes one saying what it was."""
    if isinstance(exc, LakeError):
        log.error("%s: %s", where, exc)
        return exc
    log.exception("%s: unexpected error", where)
    return LakeError(f"unexpected {type(exc).__name__}: {exc}")


__all__ = ["HarvestOptions", "QcStep", "harvest_stream", "harvest_streams", "run_harvest"]
