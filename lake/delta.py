"""Thin helpers over delta-rs shared by the lake's tables: create once, merge with retry."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from lake.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Commit metadata naming the harvest cycle a commit belongs to.
CYCLE_KEY = "coastlake.cycle"
#: How far back in a table's history the newest cycle tag is looked for: compaction and
#: reprocessing commit in between, untagged.
CYCLE_HISTORY = 300

#: How often a commit that lost a race with another writer is tried again.
COMMIT_ATTEMPTS = 12


def open_table(url: str, storage_options: dict[str, str] | None) -> DeltaTable | None:
    """The Delta table at url, or None if none exists yet."""
    try:
        return DeltaTable(url, storage_options=storage_options)
    except TableNotFoundError:
        return None


#: A checkpoint every this many commits (Delta's default is 100). Opening a table replays
#: the log since its last checkpoint; a region's backfill writes thousands of files in a
#: few commits, and replaying those on every open cost each poll about a second.
CHECKPOINT_INTERVAL = 10
_TABLE_PROPERTIES = {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}


def with_checkpoints(table: DeltaTable) -> DeltaTable:
    """`table`, its checkpoint interval set first if it was made without one (a lake made
    before this setting gains it in one log-only commit)."""
    configuration = table.metadata().configuration
    if configuration.get("delta.checkpointInterval") == str(CHECKPOINT_INTERVAL):
        return table
    try:
        table.alter.set_table_properties(_TABLE_PROPERTIES, raise_if_not_exists=False)
        # And one now: the log written so far is replayed by every open until the next.
        table.create_checkpoint()
    except (CommitFailedError, DeltaError) as exc:  # another writer set it first: fine
        log.debug("checkpoint interval not set on %s: %s", table.table_uri, exc)
    return table


def ensure_table(
    url: str,
    schema: pa.Schema,
    storage_options: dict[str, str] | None,
    partition_by: list[str] | None = None,
    name: str | None = None,
) -> DeltaTable:
    """Open the table, creating it first if needed.

    Created once, before any writer fans out: concurrent first appends race to write
    version 0 and all but one fail (STACK.md, fix G). Losing that race here is fine.
    """
    table = open_table(url, storage_options)
    if table is not None:
        return with_checkpoints(table)
    try:
        return DeltaTable.create(
            url,
            schema=schema,
            mode="error",
            partition_by=partition_by,
            name=name,
            configuration=_TABLE_PROPERTIES,
            storage_options=storage_options,
        )
    except (DeltaError, CommitFailedError, FileExistsError, OSError) as exc:
        table = open_table(url, storage_options)
        if table is None:
            raise StorageError(f"cannot create the table at {url}: {exc}") from exc
        return table


def with_commit_retry(action: Callable[[], T], what: str) -> T:
    """Run a Delta commit, retrying when another writer committed first.

    Every action passed here is idempotent (a merge on the table's keys), so running it
    again after a lost race is safe and loses nothing.
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return action()
        except (CommitFailedError, DeltaError) as exc:
            text = str(exc).lower()
            if "conflict" not in text and "commit" not in text and "version" not in text:
                raise
            if attempt == COMMIT_ATTEMPTS:
                raise StorageError(
                    f"{what}: gave up after {attempt} tries, other writers kept committing first"
                ) from exc
            pause = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            log.debug("%s: lost a commit race (%s); retrying in %.2fs", what, exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def merge_metrics(metrics: dict[str, Any]) -> tuple[int, int]:
    """(rows inserted, rows updated) from a delta-rs merge result."""
    return int(metrics.get("num_target_rows_inserted", 0)), int(
        metrics.get("num_target_rows_updated", 0)
    )


def last_cycle(table: DeltaTable | None) -> str | None:
    """The newest harvest-cycle tag in `table`'s recent history, or None."""
    if table is None:
        return None
    for commit in table.history(limit=CYCLE_HISTORY):
        tag = commit.get(CYCLE_KEY)
        if tag:
            return str(tag)
    return None
