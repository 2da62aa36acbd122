"""Harvest one stream or many: fetch -> raw zone -> parse -> normalize -> (QC) -> write.

One bad source is recorded and the rest go on; a failed response writes nothing to the
table, but its raw bytes are kept so a data manager can see what the source sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from ingest.base import Harvester, RawResponse, utc
from ingest.fetch import FetchPolicy, Validators, fetch
from ingest.kinds import get_harvester
from ingest.normalize import VariableMapping, mappings_for, normalize
from ingest.raw import RawZone
from lake.errors import FetchError, LakeError, ParseError
from lake.records import HarvestLog, HarvestRecord
from lake.registry import Stream
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import ObservationTable

log = logging.getLogger(__name__)

#: A step run on normalized rows before they are written (the QC runner plugs in here).
BeforeWrite = Callable[[Stream, pa.Table], pa.Table]


@dataclass(frozen=True, slots=True)
class HarvestOptions:
    since: datetime | None = None
    until: datetime | None = None
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    conditional: bool = True


def _mapping(harvester: Harvester, stream: Stream) -> dict[str, VariableMapping]:
    defaults: dict[str, VariableMapping] = getattr(harvester, "column_mapping", lambda s: {})(
        stream
    )
    return mappings_for(stream, defaults)


def _metadata(
    storage: Storage,
    harvester: Harvester,
    stream: Stream,
    options: HarvestOptions,
    client: httpx.Client | None,
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
        started = datetime.now(UTC)
        base: dict[str, Any] = dict(
            stream_id=stream.id, label=request.label or "metadata", url=request.url
        )
        raw: RawResponse | None = None
        raw_file: str | None = None
        try:
            raw = fetch(stream.id, request, policy=options.policy, client=client)
            assert raw is not None  # no validators sent, so never 304
            raw_file = RawZone(storage).put(raw)
            stations = harvester.parse_metadata(stream, raw, raw_file)  # type: ignore[attr-defined]
            if stations:
                StationTable(storage).upsert(stream.id, [asdict(s) for s in stations])
            status, error = "ok", None
            log.info("stream=%s metadata %s: %d stations", stream.id, request.url, len(stations))
        except ParseError as exc:
            log.warning("metadata unreadable: %s", exc)
            status, error = "syntax_failed", str(exc)
        except FetchError as exc:
            log.warning("metadata fetch failed: %s", exc)
            status, error = "fetch_failed", str(exc)
        records.append(
            HarvestRecord(
                **base,
                started_at=started,
                finished_at=datetime.now(UTC),
                status=status,
                raw_id=raw.raw_id if raw else None,
                raw_file=raw_file,
                error=error,
            )
        )
    return records


def _in_window(rows: pa.Table, options: HarvestOptions) -> pa.Table:
    """Rows inside a backfill's [since, until]; a yearly file may hold more than was asked."""
    if options.since is None and options.until is None:
        return rows
    times = rows.column("time")
    keep = pc.is_valid(times)
    if options.since is not None:
        since = pa.scalar(utc(options.since), pa.timestamp("us", tz="UTC"))
        keep = pc.and_(keep, pc.greater_equal(times, since))
    if options.until is not None:
        until = pa.scalar(utc(options.until), pa.timestamp("us", tz="UTC"))
        keep = pc.and_(keep, pc.less_equal(times, until))
    return rows.filter(keep)


def harvest_stream(
    storage: Storage,
    stream: Stream,
    options: HarvestOptions = HarvestOptions(),
    *,
    before_write: BeforeWrite | None = None,
    client: httpx.Client | None = None,
) -> list[HarvestRecord]:
    """Harvest every request of one stream; returns one record per request, all logged.

    Without a `client`, one is opened for the stream's requests (making an httpx client
    loads the CA bundle: too slow to repeat per request).
    """
    if client is None:
        with httpx.Client(follow_redirects=True) as own:
            return harvest_stream(storage, stream, options, before_write=before_write, client=own)
    harvester = get_harvester(stream.source.kind)
    table = ObservationTable(storage)
    raw_zone = RawZone(storage)
    harvest_log = HarvestLog(storage)
    previous = {r.url: r for r in harvest_log.latest(stream.id)} if options.conditional else {}
    StationTable(storage).upsert(stream.id, [asdict(s) for s in harvester.stations(stream)])
    records = _metadata(storage, harvester, stream, options, client)
    for request in harvester.requests(stream, options.since, options.until):
        started = datetime.now(UTC)
        record: dict[str, Any] = dict(
            stream_id=stream.id, label=request.label, url=request.url, started_at=started
        )
        last = previous.get(request.url)
        validators = (
            Validators(last.etag, last.last_modified)
            if last and last.status in ("ok", "unchanged")
            else None
        )
        raw: RawResponse | None = None
        raw_file: str | None = None
        try:
            raw = fetch(
                stream.id, request, policy=options.policy, validators=validators, client=client
            )
            if raw is None or (
                last is not None
                and last.status in ("ok", "unchanged")
                and last.raw_id == raw.raw_id
            ):
                log.info(
                    "stream=%s %s: unchanged since the last harvest",
                    stream.id,
                    request.label or request.url,
                )
                records.append(
                    HarvestRecord(
                        **record,
                        finished_at=datetime.now(UTC),
                        status="unchanged",
                        raw_id=last.raw_id if last else None,
                        etag=(raw.etag if raw else last.etag if last else None),
                        last_modified=(
                            raw.last_modified if raw else last.last_modified if last else None
                        ),
                    )
                )
                continue
            raw_file = raw_zone.put(raw)
            parsed = harvester.parse(stream, raw, raw_file)
            if parsed.stations:
                StationTable(storage).upsert(stream.id, [asdict(s) for s in parsed.stations])
            rows = normalize(
                stream,
                parsed.rows,
                _mapping(harvester, stream),
                raw_id=raw.raw_id,
                url=raw.url,
                raw_file=raw_file,
            )
            if rows.num_rows == 0:
                raise ParseError(
                    source=stream.id,
                    url=raw.url,
                    file=raw_file,
                    what="no values could be extracted from the response",
                )
            rows = _in_window(rows, options)
            if before_write is not None:
                rows = before_write(stream, rows)
            result = table.write(rows)
            log.info(
                "stream=%s %s: %d values read, %d new, %d changed",
                stream.id,
                request.label or request.url,
                result.rows_in,
                result.inserted,
                result.updated,
            )
            records.append(
                HarvestRecord(
                    **record,
                    finished_at=datetime.now(UTC),
                    status="ok",
                    rows_in=result.rows_in,
                    rows_added=result.inserted,
                    rows_updated=result.updated,
                    raw_id=raw.raw_id,
                    raw_file=raw_file,
                    etag=raw.etag,
                    last_modified=raw.last_modified,
                )
            )
        except ParseError as exc:
            log.warning("syntax test failed: %s", exc)
            records.append(
                HarvestRecord(
                    **record,
                    finished_at=datetime.now(UTC),
                    status="syntax_failed",
                    raw_id=raw.raw_id if raw else None,
                    raw_file=raw_file,
                    error=str(exc),
                )
            )
        except FetchError as exc:
            no_data = getattr(harvester, "no_data", None)
            if no_data is not None and no_data(exc):
                log.info("stream=%s %s: no new data (%s)", stream.id, request.url, exc.what)
                records.append(HarvestRecord(**record, finished_at=datetime.now(UTC), status="ok"))
                continue
            log.warning("fetch failed: %s", exc)
            records.append(
                HarvestRecord(
                    **record, finished_at=datetime.now(UTC), status="fetch_failed", error=str(exc)
                )
            )
        except Exception as exc:  # a QC or write step failing: this request only
            if isinstance(exc, LakeError):
                log.error("stream=%s %s: %s", stream.id, request.url, exc)
            else:
                log.exception("stream=%s %s: unexpected error", stream.id, request.url)
                exc = LakeError(f"unexpected {type(exc).__name__}: {exc}")
            records.append(
                HarvestRecord(
                    **record,
                    finished_at=datetime.now(UTC),
                    status="failed",
                    raw_id=raw.raw_id if raw else None,
                    raw_file=raw_file,
                    error=str(exc),
                )
            )
    harvest_log.add(records)
    return records


def harvest_streams(
    storage: Storage,
    streams: Iterable[Stream],
    options: HarvestOptions = HarvestOptions(),
    *,
    before_write: BeforeWrite | None = None,
    on_done: Callable[[Stream, list[HarvestRecord]], None] | None = None,
) -> list[HarvestRecord]:
    """Harvest several streams one after another; a failure in one never stops the rest."""
    ObservationTable(storage).create()
    out: list[HarvestRecord] = []
    with httpx.Client(follow_redirects=True) as client:
        for stream in streams:
            try:
                records = harvest_stream(
                    storage, stream, options, before_write=before_write, client=client
                )
            except Exception as exc:  # the per-stream edge: record it, go on with the rest
                now = datetime.now(UTC)
                if isinstance(exc, LakeError):
                    log.error("stream=%s could not be harvested: %s", stream.id, exc)
                else:
                    log.exception("stream=%s failed with an unexpected error", stream.id)
                    exc = LakeError(f"unexpected {type(exc).__name__}: {exc}")
                records = [
                    HarvestRecord(
                        stream_id=stream.id,
                        label="",
                        url=stream.source.url or "",
                        started_at=now,
                        finished_at=now,
                        status="failed",
                        error=str(exc),
                    )
                ]
                HarvestLog(storage).add(records)
            out.extend(records)
            if on_done:
                on_done(stream, records)
    return out
