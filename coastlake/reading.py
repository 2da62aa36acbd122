"""Reading a cycle's requests: fetch → raw zone → parse → normalize, several at a time.

Requests run concurrently (a few per host, so one slow provider does not hold up the
others and no provider gets more than a polite number of connections), and each ends as
rows in the observation table's schema or as a record saying why not. Nothing here writes
to the tables except the raw zone and station metadata; the job (`coastlake.harvest`)
writes the cycle's values in one commit.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.base import Harvester, RawResponse, Request, StationInfo
from ingest.fetch import FetchPolicy, Validators, fetch
from ingest.kinds import get_harvester
from ingest.normalize import VariableMapping, in_window, mappings_for, normalize
from lake.errors import FetchError, LakeError, ParseError
from lake.harvest_log import Attempt, HarvestLog, HarvestRecord
from lake.keys import first_of_each, last_of_each, row_keys
from lake.raw import RawZone
from lake.registry import Stream
from lake.series import Marks
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import KEY_COLUMNS, conform, dedupe

log = logging.getLogger(__name__)

#: Requests in flight at once, and per host (providers ask harvesters to be gentle).
WORKERS = 8
PER_HOST = 4
#: Values a stream's batch holds before it is written (bounded memory in a backfill).
PART_VALUES = 4_000_000
_REQUEST = "__request"

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

    @property
    def backfill(self) -> bool:
        """A backfill merges every value of its window; a real-time poll sends only values
        newer than the lake holds for their series."""
        return self.since is not None or self.until is not None


@dataclass
class _Outcome:
    """One request read: its rows (or none) and how its record will end."""

    attempt: Attempt
    status: str = "ok"
    rows: pa.Table | None = None
    stations: list[StationInfo] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamBatch:
    """One stream's requests in a cycle: records to be, and the rows they read."""

    stream: Stream
    outcomes: list[_Outcome] = field(default_factory=list)
    early: list[HarvestRecord] = field(default_factory=list)  # metadata requests

    @property
    def size(self) -> int:
        """Values read by this batch's requests (what it holds in memory)."""
        return sum(o.rows.num_rows for o in self.outcomes if o.rows is not None)

    def rows_to_write(
        self, marks: Marks, *, keep_known: bool
    ) -> tuple[pa.Table, dict[int, int], bool]:
        """The stream's rows, one per key, and how many new values each request brought.

        Where requests overlap (a history file and the real-time file) the later request's
        value wins, as it would harvested one after the other, and the value counts as
        added by the first request that carried it. Without `keep_known` (a real-time
        poll), values inside their series' stored span are left out: the lake has them.
        The last item says whether every row returned lies outside its series' span.
        """
        pieces = [
            o.rows.append_column(_REQUEST, pa.repeat(pa.scalar(i, pa.int32()), o.rows.num_rows))
            for i, o in enumerate(self.outcomes)
            if o.status == "ok" and o.rows is not None and o.rows.num_rows
        ]
        if not pieces:
            return pa.table({}), {}, True
        rows = pa.concat_tables(pieces)
        keys = row_keys(rows, KEY_COLUMNS)
        if keys is not None:
            return _split_coded(rows, keys, marks, keep_known)
        firsts = rows.group_by(list(KEY_COLUMNS), use_threads=False).aggregate([(_REQUEST, "min")])
        rows = dedupe(rows).drop_columns([_REQUEST])
        fresh, _ = marks.split_known(firsts)
        counts = fresh.column(f"{_REQUEST}_min").value_counts().to_pylist()
        added = {int(c["values"]): int(c["counts"]) for c in counts}
        new_rows, known = marks.split_known(rows)
        if keep_known:
            return rows, added, known.num_rows == 0
        return new_rows, added, True

    def fail(self, error: LakeError) -> None:
        """Every request that read values ends failed with `error` (nothing was written)."""
        for o in self.outcomes:
            if o.status == "ok" and o.rows is not None:
                o.status, o.rows = "failed", None
                o.fields = {**o.fields, "error": str(error), "rows_in": 0}

    def records(self, added: dict[int, int]) -> list[HarvestRecord]:
        """The cycle's records of this stream, with the values each request added."""
        out = list(self.early)
        for i, o in enumerate(self.outcomes):
            extra = (
                {"rows_added": added.get(i, 0)} if o.status == "ok" and o.rows is not None else {}
            )
            out.append(o.attempt.done(o.status, **o.fields, **extra))
        return out


def _split_coded(
    rows: pa.Table, keys: np.ndarray, marks: Marks, keep_known: bool
) -> tuple[pa.Table, dict[int, int], bool]:
    """`StreamBatch.rows_to_write` on integer keys (lake.keys): one sort, not three joins."""
    known = marks.known_mask(rows)
    requests = np.asarray(rows.column(_REQUEST))
    first = first_of_each(keys)
    carried = np.bincount(requests[first[~known[first]]], minlength=int(requests.max()) + 1)
    added = {i: int(n) for i, n in enumerate(carried) if n}
    last = last_of_each(keys)
    if len(last) == rows.num_rows:  # no key twice: the rows as they are (a copy costs seconds)
        kept, kept_known = rows.drop_columns([_REQUEST]), known
    else:
        kept, kept_known = rows.take(pa.array(last)).drop_columns([_REQUEST]), known[last]
    if keep_known:
        return kept, added, not bool(kept_known.any())
    return kept.filter(pa.array(~kept_known)), added, True


@dataclass
class Prepared:
    """One stream's rows ready to write, how many each request contributes, and whether
    none of them can be stored yet (so the write may be an append)."""

    batch: StreamBatch
    rows: pa.Table
    added: dict[int, int] = field(default_factory=dict)
    fresh: bool = False

    @property
    def stations(self) -> set[str]:
        """The stations whose values these rows are."""
        if not self.rows.num_rows:
            return set()
        return {str(s) for s in pc.unique(self.rows.column("station_id")).to_pylist()}


def prepare(
    storage: Storage,
    batch: StreamBatch,
    marks: Marks,
    options: HarvestOptions,
    qc_step: QcStep | None,
) -> Prepared | None:
    """A stream's rows, one per key, without what a poll already stored, with QARTOD flags
    (plus stored neighbours re-flagged); None if QC failed (the batch's records say so)."""
    rows, added, fresh = batch.rows_to_write(marks, keep_known=options.backfill)
    if rows.num_rows and qc_step is not None:
        try:
            sent = rows.num_rows
            rows = qc_step(storage, batch.stream, rows)
            fresh = fresh and rows.num_rows == sent  # no stored neighbour re-flagged
        except Exception as exc:  # a QC failure fails this stream only
            batch.fail(as_lake_error(exc, f"stream={batch.stream.id} QC"))
            return None
    return Prepared(batch, rows, added, fresh)


@dataclass(frozen=True)
class ReadUnit:
    """One station's requests of one stream: what one Dask task reads, parses and flags.

    A station's requests together, so its values are deduplicated and flagged in one place,
    with the harvest log's last record of each request (conditional GETs), the spans its
    series hold (a poll skips those records) and the stream's high-water marks.
    """

    stream: Stream
    station: str
    requests: list[Request]
    last: dict[str, HarvestRecord]
    spans: dict[str, tuple[datetime, datetime]]
    marks: Marks


def read_unit(
    unit: ReadUnit, storage: Storage, options: HarvestOptions, qc_step: QcStep | None
) -> Prepared:
    """Run on a worker: fetch, keep raw, parse, normalize and flag one station's requests.

    Writes only the raw zone (content-addressed, so a retried task writes the same files):
    the values go back to the harvest job, which commits the cycle.
    """
    harvester = get_harvester(unit.stream.source.kind)
    batch = StreamBatch(unit.stream)
    with httpx.Client(follow_redirects=True) as client:
        for request in unit.requests:
            out = _read_request(
                storage, harvester, unit.stream, request, unit.last.get(request.url),
                options, client, unit.spans,
            )  # fmt: skip
            if out.rows is not None and not options.backfill:
                out.rows = unit.marks.split_known(out.rows)[0]
            batch.outcomes.append(out)
    prepared = prepare(storage, batch, unit.marks, options, qc_step)
    if prepared is None:
        return Prepared(batch, pa.table({}))
    for o in batch.outcomes:  # the rows travel once, as `prepared.rows`
        if o.rows is not None:
            o.rows = o.rows.slice(0, 0)
    return prepared


@dataclass
class StreamPlan:
    """A stream's work in a cycle on a cluster: its metadata records and stations, and its
    read units (none if the stream could not even list its requests)."""

    stream: Stream
    early: list[HarvestRecord] = field(default_factory=list)
    stations: list[StationInfo] = field(default_factory=list)
    units: list[ReadUnit] = field(default_factory=list)


def plan_units(
    storage: Storage,
    streams: list[Stream],
    options: HarvestOptions,
    client: httpx.Client,
    marks: Marks,
) -> list[StreamPlan]:
    """Each stream's metadata read here, and its requests grouped by station for the
    cluster (requests are labelled by station first)."""
    known = _last_records(storage, options)
    plans: list[StreamPlan] = []
    for stream in streams:
        plan = StreamPlan(stream)
        plans.append(plan)
        opened = _open_stream(storage, stream, options, client, plan.early)
        if opened is None:
            continue
        plan.stations = opened.metadata.stations
        spans = {} if options.backfill else marks.station_spans(stream.id)
        own = Marks(marks.keys.filter(pc.equal(marks.keys.column("dataset_id"), stream.id)))
        by_station: dict[str, list[Request]] = {}
        for request in opened.requests:
            by_station.setdefault(request.label.split(" ", 1)[0], []).append(request)
        plan.units = [
            ReadUnit(
                stream,
                station,
                group,
                {r.url: known[(stream.id, r.url)] for r in group if (stream.id, r.url) in known},
                spans,
                own,
            )
            for station, group in by_station.items()
        ]
    return plans


def upsert_stations(storage: Storage, stream: Stream, described: list[StationInfo]) -> None:
    """The stream's stations, as `read_streams` upserts them (see `_upsert_stations`)."""
    _upsert_stations(storage, get_harvester(stream.source.kind), stream, described)


def as_lake_error(exc: Exception, where: str) -> LakeError:
    """Log an error caught at an edge; a non-lake error becomes one saying what it was."""
    if isinstance(exc, LakeError):
        log.error("%s: %s", where, exc)
        return exc
    log.exception("%s: unexpected error", where)
    return LakeError(f"unexpected {type(exc).__name__}: {exc}")


def read_streams(
    storage: Storage,
    streams: list[Stream],
    options: HarvestOptions,
    client: httpx.Client,
    marks: Marks,
    *,
    on_done: Callable[[Stream, list[HarvestRecord]], None] | None = None,
) -> Iterator[StreamBatch]:
    """Read every request of `streams`, several at a time, as batches of one stream each.

    A stream whose requests read more than PART_VALUES values comes in several batches, so
    a backfill of a region's years never holds more than about that many values in memory.
    In a real-time poll each response keeps only values outside its series' stored span
    (`marks`), as soon as it is read.
    """
    known = _last_records(storage, options)
    limits: dict[str, threading.Semaphore] = defaultdict(lambda: threading.Semaphore(PER_HOST))
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="harvest") as pool:
        for stream in streams:
            batch = StreamBatch(stream)
            opened = _open_stream(storage, stream, options, client, batch.early)
            if opened is None:
                yield batch
                continue
            harvester, metadata = opened.harvester, opened.metadata

            # A poll's parser may skip what every series of a station already holds.
            spans = {} if options.backfill else marks.station_spans(stream.id)

            def one(
                request: Request,
                stream: Stream = stream,
                h: Harvester = harvester,
                spans: dict[str, tuple[datetime, datetime]] = spans,
            ) -> Any:
                with limits[urlparse(request.url).netloc]:
                    last = known.get((stream.id, request.url))
                    out = _read_request(storage, h, stream, request, last, options, client, spans)
                if out.rows is not None and not options.backfill:
                    out.rows = marks.split_known(out.rows)[0]
                return out

            found: list[StationInfo] = []
            for outcome in _bounded_map(pool, one, opened.requests, ahead=2 * WORKERS):
                # Cut a full batch between stations, not inside one (requests are labelled
                # by station first): a station's years written together need no stored
                # neighbours re-flagged, so the batch can be appended, not merged.
                if batch.size >= PART_VALUES and _station(outcome) != _station(batch.outcomes[-1]):
                    yield batch
                    batch = StreamBatch(stream)
                batch.outcomes.append(outcome)
                found += outcome.stations
            _upsert_stations(storage, harvester, stream, [*metadata.stations, *found])
            yield batch
            if on_done:
                on_done(stream, batch.early)


def _station(outcome: _Outcome) -> str:
    return outcome.attempt.label.split(" ", 1)[0]


def _bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: list[Any], ahead: int
) -> Iterator[Any]:
    """`pool.map`, in order, with at most `ahead` results waiting: a slow consumer (a big
    write) must not let finished responses pile up in memory."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _read_request(
    storage: Storage,
    harvester: Harvester,
    stream: Stream,
    request: Request,
    last: HarvestRecord | None,
    options: HarvestOptions,
    client: httpx.Client,
    spans: dict[str, tuple[datetime, datetime]],
) -> _Outcome:
    """One request, top to bottom: fetch, raw zone, parse, normalize, conform.

    A harvester that can skip records the lake holds (`parse_skipping_known`) is given
    `spans`, the times each station's series all cover.
    """
    out = _Outcome(Attempt(stream.id, request.label, request.url))
    ok_before = last is not None and last.status in ("ok", "unchanged")
    validators = Validators(last.etag, last.last_modified) if last and ok_before else None
    raw: RawResponse | None = None
    raw_file: str | None = None
    try:
        policy = options.policy.for_stream(stream)
        raw = fetch(stream.id, request, policy=policy, validators=validators, client=client)
        if raw is None or (ok_before and last is not None and last.raw_id == raw.raw_id):
            log.info("stream=%s %s: unchanged since the last harvest", stream.id, request.label)
            out.status = "unchanged"
            out.fields = {
                "raw_id": last.raw_id if last else None,
                "etag": raw.etag if raw else last.etag if last else None,
                "last_modified": raw.last_modified if raw else last.last_modified if last else None,
            }
            return out
        raw_file = RawZone(storage).put(raw)
        skipping = getattr(harvester, "parse_skipping_known", None)
        parsed = (
            skipping(stream, raw, raw_file, spans)
            if skipping is not None and spans
            else harvester.parse(stream, raw, raw_file)
        )
        out.stations = list(parsed.stations)
        rows = normalize(
            stream, parsed.rows, _mapping(harvester, stream),
            raw_id=raw.raw_id, url=raw.url, raw_file=raw_file,
        )  # fmt: skip
        if rows.num_rows == 0:
            raise ParseError(
                source=stream.id, url=raw.url, file=raw_file,
                what="no values could be extracted from the response",
            )  # fmt: skip
        out.rows = conform(in_window(rows, options.since, options.until))
        out.fields = {
            "rows_in": rows.num_rows, "raw_id": raw.raw_id, "raw_file": raw_file,
            "etag": raw.etag, "last_modified": raw.last_modified,
        }  # fmt: skip
        log.info("stream=%s %s: %d values read", stream.id, request.label or raw.url, rows.num_rows)
    except ParseError as exc:
        log.warning("syntax test failed: %s", exc)
        out.status = "syntax_failed"
        out.fields = {"raw_id": raw.raw_id if raw else None, "raw_file": raw_file}
        out.fields["error"] = str(exc)
    except FetchError as exc:
        no_data = getattr(harvester, "no_data", None)
        if no_data is not None and no_data(exc):
            log.info("stream=%s %s: no new data (%s)", stream.id, request.url, exc.what)
            return out
        log.warning("fetch failed: %s", exc)
        out.status, out.fields = "fetch_failed", {"error": str(exc)}
    except Exception as exc:  # anything else reading this request fails it only
        if not isinstance(exc, LakeError):
            log.exception("stream=%s %s: unexpected error", stream.id, request.url)
            exc = LakeError(f"unexpected {type(exc).__name__}: {exc}")
        out.status = "failed"
        out.fields = {"raw_id": raw.raw_id if raw else None, "raw_file": raw_file}
        out.fields["error"] = str(exc)
    return out


def _last_records(
    storage: Storage, options: HarvestOptions
) -> dict[tuple[str, str], HarvestRecord]:
    """The harvest log's last record of each (stream, URL): validators for conditional GETs."""
    latest = HarvestLog(storage).latest() if options.conditional else []
    return {(r.stream_id, r.url): r for r in latest}


@dataclass
class _Opened:
    """A stream ready to read: its harvester, what its metadata service said, its requests."""

    harvester: Harvester
    metadata: _Metadata
    requests: list[Request]


def _open_stream(
    storage: Storage,
    stream: Stream,
    options: HarvestOptions,
    client: httpx.Client,
    early: list[HarvestRecord],
) -> _Opened | None:
    """The stream's harvester, metadata (its records added to `early`) and requests; None,
    with a failed record in `early`, if the stream cannot even list its requests."""
    try:
        harvester = get_harvester(stream.source.kind)
        metadata = _read_metadata(storage, harvester, stream, options, client)
        early.extend(metadata.records)
        requests = list(harvester.requests(stream, options.since, options.until))
    except Exception as exc:  # the per-stream edge: record it, go on with the rest
        log.error("stream=%s could not be harvested: %s", stream.id, exc)
        attempt = Attempt(stream.id, "", stream.source.url or "")
        early.append(attempt.done("failed", error=str(exc)))
        return None
    return _Opened(harvester, metadata, requests)


@dataclass
class _Metadata:
    records: list[HarvestRecord] = field(default_factory=list)
    stations: list[StationInfo] = field(default_factory=list)


def _read_metadata(
    storage: Storage,
    harvester: Harvester,
    stream: Stream,
    options: HarvestOptions,
    client: httpx.Client,
) -> _Metadata:
    """The stream's metadata service first, if its harvester has one.

    A failure is recorded (label 'metadata') but does not stop the data harvest: the
    registry's own station and variable settings are used instead.
    """
    out = _Metadata()
    requests = getattr(harvester, "metadata_requests", None)
    for request in requests(stream) if requests is not None else []:
        attempt = Attempt(stream.id, request.label or "metadata", request.url)
        raw: RawResponse | None = None
        raw_file: str | None = None
        try:
            raw = fetch(stream.id, request, policy=options.policy.for_stream(stream), client=client)
            if raw is None:  # no validators were sent, so a 304 cannot happen
                raise FetchError(source=stream.id, url=request.url, what="empty reply")
            raw_file = RawZone(storage).put(raw)
            stations = harvester.parse_metadata(stream, raw, raw_file)  # type: ignore[attr-defined]
            out.stations += stations
            log.info("stream=%s metadata %s: %d stations", stream.id, request.url, len(stations))
            status, error = "ok", None
        except ParseError as exc:
            log.warning("metadata unreadable: %s", exc)
            status, error = "syntax_failed", str(exc)
        except FetchError as exc:
            log.warning("metadata fetch failed: %s", exc)
            status, error = "fetch_failed", str(exc)
        out.records.append(
            attempt.done(status, raw_id=raw.raw_id if raw else None, raw_file=raw_file, error=error)
        )
    return out


def _upsert_stations(
    storage: Storage, harvester: Harvester, stream: Stream, described: list[StationInfo]
) -> None:
    """One upsert of the stream's stations: the registry's entries, completed by what the
    source's metadata service and its responses said (theirs win where they say something),
    so the two never undo each other and an unchanged station writes nothing."""
    merged: dict[str, dict[str, Any]] = {}
    for info in [*harvester.stations(stream), *described]:
        entry = merged.setdefault(info.station_id, {})
        entry.update({k: v for k, v in asdict(info).items() if v not in (None, {}, "")})
    if merged:
        StationTable(storage).upsert(stream.id, list(merged.values()))


def _mapping(harvester: Harvester, stream: Stream) -> dict[str, VariableMapping]:
    """The harvester's own column → CF mapping, overridden by the registry's `variables`."""
    defaults: dict[str, VariableMapping] = getattr(harvester, "column_mapping", lambda s: {})(
        stream
    )
    return mappings_for(stream, defaults)
