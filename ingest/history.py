"""History refresh: re-reading a provider's quality-controlled data on a schedule.

Providers publish a delayed-mode, quality-controlled version of what they first sent in
real time: NDBC's monthly and yearly files, CO-OPS's verified water levels, NERRS's
authenticated exports. A stream says how often to look and how far back:

    source:
      kind: ndbc
      refresh: {every: 7d, back: 120d}   # weekly, re-read the last 120 days

When a refresh is due, the harvest job backfills that window like `--since/--until`; the
merge keeps, for each key, the value of the highest-ranked source (`source.priority`,
`ingest.base.source_rank`), so the QC'd history replaces the provisional real-time values
and a later real-time poll never undoes it. Each refresh leaves one record in the harvest
log (label `history refresh`), from which the next one is scheduled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lake.errors import ConfigError
from lake.harvest_log import Attempt, HarvestLog, HarvestRecord
from lake.registry import Stream, parse_duration
from lake.storage import Storage

log = logging.getLogger(__name__)

REFRESH_LABEL = "history refresh"


@dataclass(frozen=True, slots=True)
class RefreshRule:
    """How often a stream's history is re-read, and how far back."""

    every: timedelta
    back: timedelta


@dataclass(frozen=True, slots=True)
class Refresh:
    """One refresh to run: the stream and the window to backfill."""

    stream: Stream
    since: datetime
    until: datetime

    def record(self, records: Iterable[HarvestRecord], started: datetime) -> HarvestRecord:
        """The harvest log's record of this refresh: which window, what its requests did."""
        done = list(records)
        bad = [r for r in done if r.status not in ("ok", "unchanged")]
        attempt = Attempt(self.stream.id, REFRESH_LABEL, refresh_url(self.stream), started)
        return attempt.done(
            "failed" if bad else "ok",
            rows_in=sum(r.rows_in for r in done),
            rows_added=sum(r.rows_added for r in done),
            error=(
                f"window {self.since:%Y-%m-%d %H:%M}..{self.until:%Y-%m-%d %H:%M}: "
                f"{len(bad)} of {len(done)} requests failed"
                if bad
                else None
            ),
        )


def refresh_url(stream: Stream) -> str:
    """The log's url of a stream's refresh records (one key, so the newest is found)."""
    return f"history-refresh:{stream.id}"


def refresh_rule(stream: Stream) -> RefreshRule | None:
    """The stream's `source.refresh` rule, None if it has none; ConfigError if malformed."""
    rule = stream.source.params.get("refresh")
    if rule is None:
        return None
    if not isinstance(rule, dict) or not {"every", "back"} <= set(rule):
        raise ConfigError(
            "source.refresh needs 'every' and 'back' durations, e.g. {every: 7d, back: 120d}",
            stream=stream.id,
            field="source.refresh",
        )
    try:
        every, back = parse_duration(rule["every"]), parse_duration(rule["back"])
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc), stream=stream.id, field="source.refresh") from None
    if every <= timedelta(0) or back <= timedelta(0):
        raise ConfigError(
            "source.refresh durations must be positive", stream=stream.id, field="source.refresh"
        )
    return RefreshRule(every, back)


def last_refreshes(storage: Storage) -> dict[str, datetime]:
    """When each stream's history was last refreshed (UTC), from the harvest log."""
    out: dict[str, datetime] = {}
    for record in HarvestLog(storage).latest():
        if record.label == REFRESH_LABEL:
            out[record.stream_id] = record.started_at.replace(tzinfo=UTC)
    return out


def next_refresh(stream: Stream, last: datetime | None) -> datetime | None:
    """When the stream's history is next due (None: it has no refresh rule)."""
    rule = refresh_rule(stream)
    if rule is None:
        return None
    return datetime.min.replace(tzinfo=UTC) if last is None else last + rule.every


def refreshes_due(
    storage: Storage, streams: Iterable[Stream], now: datetime | None = None
) -> list[Refresh]:
    """The refreshes due now: streams with a rule whose last refresh is older than it says."""
    now = now or datetime.now(UTC)
    last = last_refreshes(storage)
    out = []
    for stream in streams:
        try:
            due = next_refresh(stream, last.get(stream.id))
            rule = refresh_rule(stream)
        except ConfigError as exc:  # one stream's bad rule must not stop the others
            log.error("stream=%s history refresh skipped: %s", stream.id, exc)
            continue
        if due is not None and rule is not None and due <= now:
            out.append(Refresh(stream, now - rule.back, now))
    return out
