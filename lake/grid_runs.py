"""Model runs in a grid store: each run kept in its own group, the best estimate rebuilt
at the root, and the retention that finally frees superseded data.

The best estimate keeps, for every valid time, the value from the newest run that covers
it; that is what tiles, OPeNDAP and EDR serve. A new run, the rebuilt best estimate and the
runs kept are written in one commit, so a reader never sees a best estimate without the
run it came from.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

import icechunk
import numpy as np
import pandas as pd
import xarray as xr

from lake.errors import NotFound
from lake.grid_layout import RUNS_GROUP, chunk_plan, extent_text, write_zarr

log = logging.getLogger(__name__)


class RunStore(Protocol):
    """What the run logic needs of a grid store (`lake.grids.GridStore`)."""

    dataset_id: str

    def exists(self) -> bool: ...

    def repo(self, create: bool = False) -> icechunk.Repository: ...

    def snapshot_id(self) -> str: ...

    def open(self, group: str | None = None, snapshot: str | None = None) -> xr.Dataset: ...

    def runs(self) -> list[str]: ...


def add_run(
    store: RunStore,
    ds: xr.Dataset,
    reference_time: datetime | np.datetime64 | str,
    keep_superseded: bool = False,
    time_dim: str = "time",
) -> str:
    """Store a model run and rebuild the best estimate, in one commit; returns the snapshot.

    Times before the new run come from what the best estimate held, the rest from the new
    run. A run older than a stored one is kept but does not change the best estimate.
    Unless `keep_superseded`, older runs are deleted in the same commit (retention: a newer
    forecast replaces the one it supersedes).
    """
    ref = pd.Timestamp(reference_time).tz_localize(None)
    key = ref.strftime("%Y%m%dT%H%M%SZ")
    had_runs = store.runs() if store.exists() else []
    newest_before = max(had_runs) if had_runs else None
    run = _with_reference_time(ds, ref)
    dropped: list[str] = []
    if newest_before is not None and key <= newest_before:
        if not keep_superseded:
            log.info(
                "grid %s: run %s is not newer than stored run %s; superseded, not kept",
                store.dataset_id,
                key,
                newest_before,
            )
            return store.snapshot_id()
        groups: dict[str | None, xr.Dataset] = {f"{RUNS_GROUP}/{key}": run}
    else:
        groups, dropped = _rebuilt_groups(store, run, key, had_runs, keep_superseded, time_dim)
    plan = chunk_plan(run, time_dim)
    session = store.repo(create=True).writable_session("main")
    for group, data in groups.items():
        write_zarr(data, session.store, plan, group=group)
    snap = str(session.commit(f"model run {key}"))
    log.info(
        "grid %s: run %s stored (%s); superseded runs dropped: %s",
        store.dataset_id,
        key,
        extent_text(run),
        ", ".join(dropped) or "none",
    )
    return snap


def _with_reference_time(ds: xr.Dataset, ref: pd.Timestamp) -> xr.Dataset:
    """`ds` with its run's reference time as a scalar CF coordinate."""
    run = ds.assign_coords(forecast_reference_time=np.datetime64(ref.to_datetime64(), "ns"))
    run["forecast_reference_time"].attrs.update(
        standard_name="forecast_reference_time", long_name="model run reference time"
    )
    return run


def _rebuilt_groups(
    store: RunStore,
    run: xr.Dataset,
    key: str,
    had_runs: list[str],
    keep_superseded: bool,
    time_dim: str,
) -> tuple[dict[str | None, xr.Dataset], list[str]]:
    """({group: data} to write for a run newer than every stored one, runs dropped).

    Writing the root replaces its child groups, so every run that is kept is read first
    and written back in the same commit.
    """
    groups: dict[str | None, xr.Dataset] = {None: best_estimate(store, run, time_dim)}
    dropped: list[str] = []
    for old in had_runs:
        if keep_superseded:
            groups[f"{RUNS_GROUP}/{old}"] = store.open(group=f"{RUNS_GROUP}/{old}").load()
        else:
            dropped.append(old)
    groups[f"{RUNS_GROUP}/{key}"] = run
    return groups, dropped


def best_estimate(store: RunStore, run: xr.Dataset, time_dim: str) -> xr.Dataset:
    """The best estimate after adding `run`: older times from the stored best, the rest new.
    Each time step carries the reference time of the run it came from."""
    run = run.copy()
    frt = run["forecast_reference_time"].values
    run = run.drop_vars("forecast_reference_time")
    run["forecast_reference_time"] = (time_dim, np.full(run.sizes[time_dim], frt))
    run["forecast_reference_time"].attrs.update(standard_name="forecast_reference_time")
    if not store.exists():
        return run
    try:
        best = store.open().load()
    except NotFound:
        return run
    if time_dim not in best.dims:
        return run
    start = run[time_dim].values.min()
    older = best.sel({time_dim: best[time_dim] < start})
    if older.sizes[time_dim] == 0:
        return run
    return xr.concat([older, run], dim=time_dim, data_vars="minimal", coords="minimal")


def expire(store: RunStore, older_than: datetime) -> tuple[int, int]:
    """Forget commits older than `older_than` and delete the objects only they used.

    This is what finally frees the storage of superseded runs and replaced data: until
    then every earlier version stays readable (time travel). Returns (commits expired,
    objects deleted).
    """
    repo = store.repo()
    expired = repo.expire_snapshots(older_than)
    summary = repo.garbage_collect(older_than)
    deleted = int(
        getattr(summary, "chunks_deleted", 0)
        + getattr(summary, "manifests_deleted", 0)
        + getattr(summary, "snapshots_deleted", 0)
    )
    log.info(
        "grid %s: expired %d commits older than %s, deleted %d objects",
        store.dataset_id,
        len(expired),
        older_than,
        deleted,
    )
    return len(expired), deleted
