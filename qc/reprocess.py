"""Recompute QC flags over history in parallel with Dask, the same way as in real time.

One task per station-variable series flags the stored rows of a time window with the same
`flag_batch` the harvest uses (with the stored values around the window as context), and
returns only the rows whose flags change. The client merges them in ONE commit, so readers
see the old flags or the new ones, never a mix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.cluster import dask_client, describe, run_tasks
from lake.registry import Stream
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.climatology import load_climatology
from qc.context import only_series, series_filter
from qc.on_write import flag_batch
from qc.runner import SeriesKey

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReprocessResult:
    series: int
    values: int
    changed: int
    version: int | None


def _ts(moment: datetime) -> pa.Scalar:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return pa.scalar(np.datetime64(moment, "us"), pa.timestamp("us"))


def _time_filter(since: datetime | None, until: datetime | None) -> pc.Expression | None:
    flt = None
    if since is not None:
        flt = pc.field("time") >= _ts(since)
    if until is not None:
        upper = pc.field("time") <= _ts(until)
        flt = upper if flt is None else flt & upper
    return flt


def list_series(
    storage: Storage, stream: Stream, since: datetime | None, until: datetime | None
) -> list[SeriesKey]:
    """The station-variable series of a stream with values in the window."""
    window = _time_filter(since, until)
    rows = (
        ObservationTable(storage)
        .dataset()
        .to_table(columns=["dataset_id", "station_id", "variable", "z"], filter=window)
    )
    # Ids are matched after the scan: see qc.context.series_filter.
    rows = rows.filter(pc.equal(rows.column("dataset_id"), stream.id))
    keys = rows.group_by(["dataset_id", "station_id", "variable", "z"]).aggregate([])
    return sorted(
        (r["dataset_id"], r["station_id"], r["variable"], float(r["z"])) for r in keys.to_pylist()
    )


def reprocess_series(
    key: SeriesKey,
    storage: Storage,
    stream: Stream,
    since: datetime | None,
    until: datetime | None,
) -> pa.Table:
    """Rows of one series (in the window, plus stored neighbours) whose flags change."""
    dataset = ObservationTable(storage).dataset()
    flt = series_filter(key)
    window = _time_filter(since, until)
    if window is not None:
        flt = flt & window
    batch = only_series(dataset.to_table(filter=flt), key)
    if batch.num_rows == 0:
        return batch
    return flag_batch(
        storage,
        stream,
        batch,
        only_changed=True,
        dataset=dataset,
        climatology=load_climatology(storage),
    )


def reprocess(
    storage: Storage,
    stream: Stream,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    scheduler: str | None = None,
    client: Client | None = None,
    workers: int = 2,
) -> ReprocessResult:
    """Recompute the flags of `stream` in [since, until] on Dask and merge the changes.

    `scheduler` is a Dask scheduler address (default LAKE_DASK_SCHEDULER; unset, a local
    cluster of `workers` processes). Pass a `client` to reuse one.
    """
    keys = list_series(storage, stream, since, until)
    log.info("stream=%s: reprocessing QC of %d series", stream.id, len(keys))
    if not keys:
        return ReprocessResult(0, 0, 0, None)
    if client is not None:
        tables = _run(client, storage, stream, keys, since, until)
    else:
        address = scheduler or storage.settings.dask_scheduler
        with dask_client(address, workers) as own:
            tables = _run(own, storage, stream, keys, since, until)
    changed = pa.concat_tables(tables, promote_options="default") if tables else None
    if changed is None or changed.num_rows == 0:
        log.info("stream=%s: flags already up to date", stream.id)
        return ReprocessResult(len(keys), 0, 0, None)
    result = ObservationTable(storage).write(changed)
    log.info(
        "stream=%s: %d values re-flagged in one commit (version %s)",
        stream.id,
        result.updated,
        result.version,
    )
    return ReprocessResult(len(keys), changed.num_rows, result.updated, result.version)


def _run(
    client: Client,
    storage: Storage,
    stream: Stream,
    keys: list[SeriesKey],
    since: datetime | None,
    until: datetime | None,
) -> list[pa.Table]:
    log.info("stream=%s: sending %d series to %s", stream.id, len(keys), describe(client))
    tables = run_tasks(
        client,
        reprocess_series,
        keys,
        storage,
        stream,
        since,
        until,
        what=f"stream={stream.id}: QC of series",
    )
    return [t for t in tables if t.num_rows]
