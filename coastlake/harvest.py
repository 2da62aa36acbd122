"""The harvest job: from a source's bytes to rows in the lake, as plain calls in order.

For each request of a stream: fetch (ingest.fetch) → keep the bytes in the raw zone
(lake.raw) → parse, the syntax test (the stream's harvester in ingest/) → normalize to CF
names, canonical units, UTC and z (ingest.normalize) → QARTOD flags (qc.on_write) → merge
into the observation table (lake.tables). Each attempt is one record in the harvest log
(lake.harvest_log), and the catalog is updated once at the end (stac.build).

One bad source is recorded and the rest go on; a failed response writes nothing to the
table, but its raw bytes are kept so a data manager can see what the source sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import httpx
import pyarrow as pa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.base import Harvester, RawResponse, Request
from ingest.fetch import FetchPolicy, Validators, fetch
from ingest.grids import ingest_grid
from ingest.kinds import get_harvester, is_harvested
from ingest.normalize import VariableMapping, in_window, mappings_for, normalize
from ingest.vector_layers import ingest_layer_stream
from lake.errors import FetchError, LakeError, ParseError
from lake.harvest_log import Attempt, HarvestLog, HarvestRecord
from lake.raw import RawZone
from lake.registry import Kind, Registry, Stream
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import ObservationTable, conform, dedupe
from qc.on_write import qc_before_write
from stac.build import rebuild_after_harvest

log = logging.getLogger(__name__)

#: The QC step: normalized rows of a stream in, rows with flags (plus re-flagged stored
#: neighbours) out. Tests of the ingest stages alone pass `qc_step=None`.
QcStep = Callable[[Storage, Stream, pa.Table], pa.Table]


@dataclass(frozen=True, slots=True)
class HarvestOptions:
    """How to harvest: a backfill window, fetch timeouts and retries, conditional requests."""

    since: datetime | None = None
    until: datetime | None = None
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    conditional: bool = True


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
            bar.update(task, advance=1, description=f"harvested {stream.id}")

        records = harvest_streams(storage, chosen, options, on_done=done)
    rebuild_after_harvest(storage, registry, records)
    return records


def harvest_streams(
    storage: Storage,
    streams: Iterable[Stream],
    options: HarvestOptions = HarvestOptions(),
    *,
    qc_step: QcStep | None = qc_before_write,
    on_done: Callable[[Stream, list[HarvestRecord]], None] | None = None,
) -> list[HarvestRecord]:
    """Harvest several streams one after another; a failure in one never stops the rest."""
    ObservationTable(storage).create()
    out: list[HarvestRecord] = []
    with httpx.Client(follow_redirects=True) as client:
        for stream in streams:
            try:
                records = harvest_stream(storage, stream, options, qc_step=qc_step, client=client)
            except Exception as exc:  # the per-stream edge: record it, go on with the rest
                attempt = Attempt(stream.id, "", stream.source.url or "")
                records = [attempt.done("failed", error=str(_as_lake_error(exc, stream.id)))]
                HarvestLog(storage).add(records)
            out.extend(records)
            if on_done:
                on_done(stream, records)
    return out


def harvest_stream(
    storage: Storage,
    stream: Stream,
    options: HarvestOptions = HarvestOptions(),
    *,
    qc_step: QcStep | None = qc_before_write,
    client: httpx.Client | None = None,
) -> list[HarvestRecord]:
    """Harvest every request of one stream; returns one record per request, all logged.

    Grids go to Icechunk and GIS layers to GeoParquet, each one attempt; observation streams
    run request by request. Without a `client`, one is opened for the stream's requests
    (making an httpx client loads the CA bundle: too slow to repeat per request).
    """
    if stream.kind is Kind.grid:
        records = [_harvest_grid(storage, stream)]
    elif stream.kind is Kind.vector:
        records = [_harvest_layer(storage, stream)]
    elif client is None:
        with httpx.Client(follow_redirects=True) as own:
            return harvest_stream(storage, stream, options, qc_step=qc_step, client=own)
    else:
        harvester = get_harvester(stream.source.kind)
        known = (
            {r.url: r for r in HarvestLog(storage).latest(stream.id)} if options.conditional else {}
        )
        StationTable(storage).upsert(stream.id, [asdict(s) for s in harvester.stations(stream)])
        records = _harvest_metadata(storage, harvester, stream, options, client)
        for request in harvester.requests(stream, options.since, options.until):
            records.append(
                _harvest_request(
                    storage, harvester, stream, request, known.get(request.url),
                    options, qc_step, client,
                )
            )  # fmt: skip
    HarvestLog(storage).add(records)
    return records


def _harvest_request(
    storage: Storage,
    harvester: Harvester,
    stream: Stream,
    request: Request,
    last: HarvestRecord | None,
    options: HarvestOptions,
    qc_step: QcStep | None,
    client: httpx.Client,
) -> HarvestRecord:
    """One request, top to bottom: fetch, raw zone, parse, normalize, QC, write."""
    attempt = Attempt(stream.id, request.label, request.url)
    what = request.label or request.url
    ok_before = last is not None and last.status in ("ok", "unchanged")
    validators = Validators(last.etag, last.last_modified) if last and ok_before else None
    raw: RawResponse | None = None
    raw_file: str | None = None
    try:
        raw = fetch(stream.id, request, policy=options.policy, validators=validators, client=client)
        if raw is None or (ok_before and last is not None and last.raw_id == raw.raw_id):
            log.info("stream=%s %s: unchanged since the last harvest", stream.id, what)
            return attempt.done(
                "unchanged",
                raw_id=last.raw_id if last else None,
                etag=raw.etag if raw else last.etag if last else None,
                last_modified=raw.last_modified if raw else last.last_modified if last else None,
            )
        raw_file = RawZone(storage).put(raw)
        parsed = harvester.parse(stream, raw, raw_file)
        if parsed.stations:
            StationTable(storage).upsert(stream.id, [asdict(s) for s in parsed.stations])
        rows = normalize(
            stream, parsed.rows, _mapping(harvester, stream),
            raw_id=raw.raw_id, url=raw.url, raw_file=raw_file,
        )  # fmt: skip
        if rows.num_rows == 0:
            raise ParseError(
                source=stream.id, url=raw.url, file=raw_file,
                what="no values could be extracted from the response",
            )  # fmt: skip
        rows = dedupe(conform(in_window(rows, options.since, options.until)))
        if qc_step is not None:
            rows = qc_step(storage, stream, rows)
        result = ObservationTable(storage).write(rows, unique_keys=True)
        log.info(
            "stream=%s %s: %d values read, %d new, %d changed",
            stream.id, what, result.rows_in, result.inserted, result.updated,
        )  # fmt: skip
        return attempt.done(
            "ok",
            rows_in=result.rows_in, rows_added=result.inserted, rows_updated=result.updated,
            raw_id=raw.raw_id, raw_file=raw_file, etag=raw.etag, last_modified=raw.last_modified,
        )  # fmt: skip
    except ParseError as exc:
        log.warning("syntax test failed: %s", exc)
        return attempt.done(
            "syntax_failed", raw_id=raw.raw_id if raw else None, raw_file=raw_file, error=str(exc)
        )
    except FetchError as exc:
        no_data = getattr(harvester, "no_data", None)
        if no_data is not None and no_data(exc):
            log.info("stream=%s %s: no new data (%s)", stream.id, request.url, exc.what)
            return attempt.done("ok")
        log.warning("fetch failed: %s", exc)
        return attempt.done("fetch_failed", error=str(exc))
    except Exception as exc:  # a QC or write step failing: this request only
        error = _as_lake_error(exc, f"{stream.id} {request.url}")
        return attempt.done(
            "failed", raw_id=raw.raw_id if raw else None, raw_file=raw_file, error=str(error)
        )


def _harvest_metadata(
    storage: Storage,
    harvester: Harvester,
    stream: Stream,
    options: HarvestOptions,
    client: httpx.Client,
) -> list[HarvestRecord]:
    """Read the stream's metadata service first, if its harvester has one.

    A failure is recorded (label 'metadata') but does not stop the data harvest: the
    registry's own station and variable settings are used instead.
    """
    requests = getattr(harvester, "metadata_requests", None)
    if requests is None:
        return []
    records = []
    for request in requests(stream):
        attempt = Attempt(stream.id, request.label or "metadata", request.url)
        raw: RawResponse | None = None
        raw_file: str | None = None
        try:
            raw = fetch(stream.id, request, policy=options.policy, client=client)
            if raw is None:  # no validators were sent, so a 304 cannot happen
                raise FetchError(source=stream.id, url=request.url, what="empty reply")
            raw_file = RawZone(storage).put(raw)
            stations = harvester.parse_metadata(stream, raw, raw_file)  # type: ignore[attr-defined]
            if stations:
                StationTable(storage).upsert(stream.id, [asdict(s) for s in stations])
            log.info("stream=%s metadata %s: %d stations", stream.id, request.url, len(stations))
            status, error = "ok", None
        except ParseError as exc:
            log.warning("metadata unreadable: %s", exc)
            status, error = "syntax_failed", str(exc)
        except FetchError as exc:
            log.warning("metadata fetch failed: %s", exc)
            status, error = "fetch_failed", str(exc)
        records.append(
            attempt.done(status, raw_id=raw.raw_id if raw else None, raw_file=raw_file, error=error)
        )
    return records


def _harvest_grid(storage: Storage, stream: Stream) -> HarvestRecord:
    """A grid stream into its Icechunk repository: one attempt, time steps counted."""
    attempt = Attempt(stream.id, "grid", stream.source.url or "")
    try:
        result = ingest_grid(storage, stream)
    except LakeError as exc:
        log.error("stream=%s grid ingest failed: %s", stream.id, exc)
        return attempt.done("failed", error=str(exc))
    # Not observation rows: time steps are counted in rows_in, rows_added stays 0.
    return replace(attempt, url=", ".join(result.sources)).done(
        "ok" if result.times_added else "unchanged", rows_in=result.times_added
    )


def _harvest_layer(storage: Storage, stream: Stream) -> HarvestRecord:
    """A GIS layer stream into GeoParquet: one attempt, features counted in rows_in."""
    attempt = Attempt(stream.id, "layer", stream.source.url or "")
    try:
        info = ingest_layer_stream(storage, stream)
    except LakeError as exc:
        log.error("stream=%s layer ingest failed: %s", stream.id, exc)
        return attempt.done("failed", error=str(exc))
    return attempt.done("ok", rows_in=info.features)


def _mapping(harvester: Harvester, stream: Stream) -> dict[str, VariableMapping]:
    """The harvester's own column → CF mapping, overridden by the registry's `variables`."""
    defaults: dict[str, VariableMapping] = getattr(harvester, "column_mapping", lambda s: {})(
        stream
    )
    return mappings_for(stream, defaults)


def _as_lake_error(exc: Exception, where: str) -> LakeError:
    """Log an error caught at an edge; a non-lake error becomes one saying what it was."""
    if isinstance(exc, LakeError):
        log.error("%s: %s", where, exc)
        return exc
    log.exception("%s: unexpected error", where)
    return LakeError(f"unexpected {type(exc).__name__}: {exc}")


__all__ = ["HarvestOptions", "QcStep", "harvest_stream", "harvest_streams", "run_harvest"]
