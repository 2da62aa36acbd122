"""Retention that acts: each stream's `retention` rules from the registry, enforced on the lake.

For every stream, and nothing else:

- `keep: false` (the provider's terms forbid copies, as NERRS's do): every stored row of the
  stream is deleted, with its series state (the latest value is a copy too), and no raw
  response is kept;
- `days: N`: rows (and raw responses) older than N days are deleted;
- `keep_raw: false`: the stream's raw responses are deleted;
- `superseded_runs: false` on a grid of model runs: runs older than the newest are dropped
  and the commits that still held them expired, so their bytes are freed.

Deleted rows leave the table in one Delta commit per stream, and the data files that commit
removed are deleted at once (not at the next vacuum): the point is that the bytes are gone.
Each action is logged and recorded under `<lake>/stewardship/retention/`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import zarr
from deltalake import DeltaTable

from lake.delta import open_table, with_commit_retry
from lake.grid_layout import RUNS_GROUP
from lake.grids import GridStore
from lake.registry import Kind, Registry, Stream
from lake.storage import Storage

log = logging.getLogger(__name__)

RECORDS = ("stewardship", "retention")


@dataclass(frozen=True)
class Action:
    """One thing retention did (or, in a dry run, would do)."""

    stream_id: str
    what: str  # rows | raw | series | runs
    count: int
    detail: str


@dataclass
class RetentionRun:
    at: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)


def apply_retention(
    storage: Storage,
    registry: Registry,
    streams: Iterable[Stream] | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionRun:
    """Enforce the retention rules of `streams` (default: every stream in the registry);
    with `dry_run`, only say what would go. Streams kept whole forever cost nothing."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    run = RetentionRun(at=moment.isoformat() + "Z", dry_run=dry_run)
    for stream in registry.streams if streams is None else streams:
        for action in _stream_actions(storage, stream, moment, dry_run):
            log.info(
                "retention %s%s: %s %d (%s)",
                "(dry run) " if dry_run else "",
                action.stream_id,
                action.what,
                action.count,
                action.detail,
            )
            run.actions.append(action)
    if not dry_run and run.actions:
        stamp = moment.strftime("%Y%m%dT%H%M%S%fZ")
        storage.write_bytes(
            storage.url(*RECORDS, f"{stamp}.json"), json.dumps(asdict(run), indent=1).encode()
        )
    return run


def _stream_actions(storage: Storage, stream: Stream, now: datetime, dry_run: bool) -> list[Action]:
    rules = stream.retention
    actions: list[Action] = []
    if stream.kind in (Kind.grid, Kind.vector):
        if stream.kind == Kind.grid and not rules.superseded_runs:
            actions += _drop_superseded_runs(storage, stream, dry_run)
    else:
        cutoff = None if rules.keep else now
        if rules.keep and rules.days is not None:
            cutoff = now - timedelta(days=rules.days)
        if cutoff is not None:
            actions += _delete_rows(storage, stream, cutoff, whole=not rules.keep, dry_run=dry_run)
    if not rules.keep or not rules.keep_raw:
        actions += _delete_raw(storage, stream, None, dry_run)
    elif rules.days is not None:
        actions += _delete_raw(storage, stream, now - timedelta(days=rules.days), dry_run)
    return actions


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _delete_rows(
    storage: Storage, stream: Stream, cutoff: datetime, *, whole: bool, dry_run: bool
) -> list[Action]:
    """Delete the stream's rows older than `cutoff` (all of them if `whole`)."""
    url = storage.url("tables", "observations")
    options = storage.delta_options()
    table = open_table(url, options)
    if table is None:
        return []
    predicate = f"dataset_id = {_quote(stream.id)}"
    if not whole:
        predicate += f" AND time < '{cutoff.isoformat(sep=' ')}'"
    detail = (
        "all rows: the terms forbid keeping them"
        if whole
        else f"older than {cutoff:%Y-%m-%d %H:%M} UTC"
    )
    found = _count(table, stream.id, None if whole else cutoff)
    actions: list[Action] = []
    if found and not dry_run:

        def delete() -> tuple[int, list[str]]:
            current = open_table(url, options) or table
            metrics = current.delete(predicate)
            return int(metrics.get("num_deleted_rows", 0)), _removed_files(
                storage, current.version()
            )

        deleted, files = with_commit_retry(delete, f"retention delete in {url}")
        for path in files:
            storage.delete(storage.url("tables", "observations", path))
        actions.append(Action(stream.id, "rows", deleted, f"{detail}; {len(files)} files deleted"))
    elif found:
        actions.append(Action(stream.id, "rows", found, detail))
    if whole:
        actions += _delete_series(storage, stream, dry_run)
    return actions


def _count(table: DeltaTable, stream_id: str, before: datetime | None) -> int:
    """Rows of the stream (older than `before`, if given) in the table's current version.

    Reads the two columns and compares in Arrow: delta-rs hands strings out as string
    views, which Arrow's dataset filters cannot compare with a plain string yet."""
    columns = ["dataset_id"] + (["time"] if before is not None else [])
    rows = table.to_pyarrow_dataset().to_table(columns=columns)
    test = pc.equal(rows.column("dataset_id").cast(pa.string()), stream_id)
    if before is not None:
        test = pc.and_(test, pc.less(rows.column("time"), pa.scalar(before, pa.timestamp("us"))))
    return int(pc.sum(test.cast(pa.int64())).as_py() or 0)


def _removed_files(storage: Storage, version: int) -> list[str]:
    """Data files (relative paths) that commit `version` of the observation table removed."""
    entry = storage.url("tables", "observations", "_delta_log", f"{version:020d}.json")
    lines = [json.loads(line) for line in storage.read_bytes(entry).splitlines() if line.strip()]
    return [unquote(str(a["remove"]["path"])) for a in lines if "remove" in a]


def _delete_series(storage: Storage, stream: Stream, dry_run: bool) -> list[Action]:
    table = open_table(storage.url("tables", "series"), storage.delta_options())
    if table is None:
        return []
    predicate = f"dataset_id = {_quote(stream.id)}"
    found = _count(table, stream.id, None)
    if not found:
        return []
    if not dry_run:
        with_commit_retry(lambda: table.delete(predicate), "retention delete of series state")
    return [Action(stream.id, "series", found, "latest values and spans of a stream not kept")]


def _delete_raw(
    storage: Storage, stream: Stream, before: datetime | None, dry_run: bool
) -> list[Action]:
    """Delete the stream's raw responses (those fetched before `before`, if given)."""
    doomed: list[str] = []
    for folder in storage.list(storage.url("raw", stream.id)):
        for url in storage.list(folder):
            if url.endswith(".json"):
                continue
            if before is not None:
                try:
                    meta = json.loads(storage.read_bytes(url + ".json"))
                    fetched = datetime.fromisoformat(str(meta["fetched_at"]))
                except (FileNotFoundError, KeyError, ValueError):
                    continue  # no sidecar to date it: kept rather than guessed
                if fetched.tzinfo is not None:
                    fetched = fetched.astimezone(UTC).replace(tzinfo=None)
                if fetched >= before:
                    continue
            doomed.append(url)
    if not doomed:
        return []
    if not dry_run:
        for url in doomed:
            storage.delete(url)
            storage.delete(url + ".json")
    what = "keep_raw is off" if before is None else f"fetched before {before:%Y-%m-%d}"
    return [Action(stream.id, "raw", len(doomed), what)]


def _drop_superseded_runs(storage: Storage, stream: Stream, dry_run: bool) -> list[Action]:
    """Drop every model run but the newest, then free the bytes only older commits held
    (the ingest drops a superseded run from the grid as the next arrives, but its chunks
    stay readable by time travel until the commits holding them are expired)."""
    store = GridStore(storage, stream.id)
    if not store.exists():
        return []
    runs = store.runs()
    if not runs:
        return []  # not a grid of model runs
    older = runs[:-1]
    # Commits besides the tip and the repository's first (empty, never expired) one.
    earlier_commits = len(store.history()) - 2
    if not older and earlier_commits <= 0:
        return []
    detail = f"superseded by {runs[-1]}: {', '.join(older) or 'none left in the grid'}"
    if dry_run:
        return [Action(stream.id, "runs", len(older), f"{detail}; {earlier_commits} commits")]
    if older:
        session = store.repo().writable_session("main")
        group = zarr.open_group(session.store, mode="a")[RUNS_GROUP]
        for key in older:
            del group[key]  # type: ignore[union-attr]
        session.commit(f"retention: drop runs superseded by {runs[-1]}: {', '.join(older)}")
    # Forget every commit before now; the freed chunks are those only older runs used.
    expired, freed = store.expire(datetime.now(UTC))
    detail += f"; {expired} commits expired, {freed} objects deleted"
    return [Action(stream.id, "runs", len(older), detail)]


def last_runs(storage: Storage, limit: int = 20) -> list[dict[str, Any]]:
    """The newest retention records, newest first."""
    urls = sorted(storage.list(storage.url(*RECORDS)), reverse=True)[:limit]
    return [json.loads(storage.read_bytes(u)) for u in urls]
