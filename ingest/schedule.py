"""Which streams are due, and the watch loop that keeps harvesting at each stream's cadence.

A stream is due when its last attempt (from the harvest log) is older than its cadence, or
it was never tried. Re-running is harmless: unchanged responses cost a 304 or a hash
compare, and writes are merges.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from ingest.kinds import is_harvested
from lake.harvest_log import HarvestLog, HarvestRecord
from lake.registry import Stream
from lake.storage import Storage

log = logging.getLogger(__name__)

#: Shortest pause of the watch loop, so a zero cadence cannot spin the CPU.
MIN_PAUSE = timedelta(seconds=1)


def last_attempts(storage: Storage) -> dict[str, datetime]:
    """When each stream was last tried (UTC), from the harvest log."""
    out: dict[str, datetime] = {}
    for record in HarvestLog(storage).latest():
        started = record.started_at.replace(tzinfo=UTC)
        if record.stream_id not in out or started > out[record.stream_id]:
            out[record.stream_id] = started
    return out


def next_due(stream: Stream, last: datetime | None) -> datetime:
    """When the stream is next due: its last attempt plus its cadence (now if never)."""
    if last is None:
        return datetime.min.replace(tzinfo=UTC)
    return last + stream.cadence


def due_streams(
    storage: Storage, streams: Iterable[Stream], now: datetime | None = None
) -> list[Stream]:
    """The streams whose cadence has passed since their last attempt.

    A catalog-only stream (an external feed) is never due: there is nothing to fetch, and
    counting it due would wake the watch loop at once, round after round.
    """
    now = now or datetime.now(UTC)
    last = last_attempts(storage)
    harvested = [s for s in streams if is_harvested(s.source.kind)]
    return [s for s in harvested if next_due(s, last.get(s.id)) <= now]


def watch(
    storage: Storage,
    streams: list[Stream],
    run: Callable[[list[Stream]], list[HarvestRecord]],
    *,
    stop: threading.Event | None = None,
    max_rounds: int | None = None,
    refresh: Callable[[], object] | None = None,
) -> int:
    """Harvest what is due, sleep until the next stream is due, repeat until `stop` is set
    (Ctrl-C in the CLI) or `max_rounds` rounds ran. Returns the rounds run.

    `run` is the caller's harvest (the pipeline with QC and catalog steps), so the loop
    knows nothing of what happens to the rows. `refresh`, if given, runs each round after
    it: the history refreshes that are due (`ingest.history`).
    """
    stop = stop or threading.Event()
    rounds = 0
    while not stop.is_set():
        due = due_streams(storage, streams)
        if due:
            records = run(due)
            bad = sum(r.status not in ("ok", "unchanged") for r in records)
            log.info(
                "harvested %d due streams: %d requests, %d failed", len(due), len(records), bad
            )
        if refresh is not None:
            refresh()
        rounds += 1
        if max_rounds is not None and rounds >= max_rounds:
            break
        last = last_attempts(storage)
        now = datetime.now(UTC)
        harvested = [s for s in streams if is_harvested(s.source.kind)]
        if not harvested:
            log.info("no stream to harvest (catalog-only feeds need no harvest); stopping")
            break
        wake = min(next_due(s, last.get(s.id)) for s in harvested)
        pause = max(wake - now, MIN_PAUSE)
        log.info(
            "next harvest due at %s (in %.0f s)",
            (now + pause).strftime("%H:%M:%S"),
            pause.total_seconds(),
        )
        stop.wait(pause.total_seconds())
    return rounds
