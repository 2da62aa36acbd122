"""Grid stores: one Icechunk repository of Zarr v3 per gridded dataset, under `<root>/grids/<id>`.

Icechunk makes every write a transaction: an append along time or a new model run is one
commit, so a reader sees a grid only when it is whole, and a writer killed half-way leaves the
last commit (the previous extent) intact. The same calls work on a local folder and on any
S3-compatible bucket (`icechunk.s3_storage` with the settings' endpoint).

Model runs live in groups `runs/<reference time>`; the root group holds the best estimate
across runs (for every valid time, the newest run that covers it), which is what tiles,
OPeNDAP and EDR serve. Superseded runs are dropped in the same commit unless retention keeps
them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from lake.errors import NotFound, StorageError
from lake.storage import Storage

log = logging.getLogger(__name__)

GRIDS = "grids"
RUNS_GROUP = "runs"
#: Aim for chunks of about this many bytes: big enough that a map tile reads a handful of
#: objects, small enough that a point time series does not drag whole maps along.
TARGET_CHUNK_BYTES = 2_000_000
SPATIAL_CHUNK = 256
MAX_TIME_CHUNK = 64

# The local store warns (from Rust) on every open that it is not safe for concurrent commits;
# we have one writer per dataset, so the warning says nothing to a data manager.
with contextlib.suppress(Exception):  # older icechunk had no such call
    icechunk.set_logs_filter("error")


@dataclass(frozen=True)
class GridVariable:
    """A data variable of a grid, named the CF way."""

    name: str
    standard_name: str | None
    units: str | None
    long_name: str | None = None
    dims: tuple[str, ...] = ()


@dataclass(frozen=True)
class GridInfo:
    """What the catalog and the tiler need to know about one grid, without reading data."""

    dataset_id: str
    url: str
    variables: list[GridVariable]
    bbox: tuple[float, float, float, float] | None
    time_start: datetime | None
    time_end: datetime | None
    times: int
    runs: list[str] = field(default_factory=list)
    snapshot: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    extra_dims: dict[str, list[float]] = field(default_factory=dict)


def grid_url(storage: Storage, dataset_id: str) -> str:
    """Location of a dataset's Icechunk repository in the lake."""
    return storage.url(GRIDS, dataset_id)


def icechunk_storage(storage: Storage, dataset_id: str) -> icechunk.Storage:
    """The Icechunk storage object for a dataset, on the lake's folder or bucket."""
    url = grid_url(storage, dataset_id)
    if not storage.is_s3:
        return icechunk.local_filesystem_storage(url)
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s = storage.settings
    kwargs: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "region": s.region}
    if s.aws_endpoint_url:
        kwargs.update(
            endpoint_url=s.aws_endpoint_url,
            allow_http=s.aws_endpoint_url.startswith("http://"),
            force_path_style=True,
        )
    if s.aws_access_key_id:
        kwargs.update(
            access_key_id=s.aws_access_key_id, secret_access_key=s.aws_secret_access_key or ""
        )
        if s.aws_session_token:
            kwargs["session_token"] = s.aws_session_token
    else:
        kwargs["from_env"] = True
    return icechunk.s3_storage(**kwargs)


def chunk_plan(ds: xr.Dataset, time_dim: str = "time") -> dict[str, int]:
    """Chunk sizes good for both a map tile and a point series.

    Space is cut in blocks of up to 256×256 (one web tile at native resolution reads one to
    four); time is grouped so a chunk holds about 2 MB, so a point series over a month of
    daily maps reads a few objects instead of one per day. Other dims (depth) get 1: a
    map is drawn at one depth.
    """
    plan: dict[str, int] = {}
    spatial = 1
    itemsize = max((v.dtype.itemsize for v in ds.data_vars.values()), default=4)
    for dim, size in ds.sizes.items():
        if dim in ("lat", "latitude", "lon", "longitude", "y", "x"):
            plan[str(dim)] = min(int(size), SPATIAL_CHUNK)
            spatial *= plan[str(dim)]
    for dim, size in ds.sizes.items():
        if str(dim) in plan:
            continue
        if dim == time_dim:
            # Not capped by the current length: a store that starts with one step grows
            # into its time chunks as later steps are appended.
            plan[str(dim)] = max(
                1, min(MAX_TIME_CHUNK, TARGET_CHUNK_BYTES // max(1, spatial * itemsize))
            )
        else:
            plan[str(dim)] = 1 if size > 1 else int(size)
    return plan


def _encoding(ds: xr.Dataset, plan: dict[str, int]) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        if not var.dims:
            continue
        enc[str(name)] = {"chunks": tuple(plan.get(str(d), var.sizes[d]) for d in var.dims)}
    return enc


def _dask_chunks(ds: xr.Dataset, plan: dict[str, int]) -> dict[str, int]:
    """Dask chunks that line up with the Zarr chunks (each task writes whole chunks)."""
    return {str(d): min(plan.get(str(d), n), n) for d, n in ds.sizes.items()}


def _clean_for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """Drop netCDF-only encodings (chunk sizes, filters) that do not apply to Zarr v3."""
    ds = ds.copy()
    for var in ds.variables.values():
        keep = {
            k: v
            for k, v in var.encoding.items()
            if k in ("units", "calendar", "dtype", "_FillValue", "scale_factor", "add_offset")
        }
        var.encoding = keep
    return ds


_CACHE_LOCK = threading.Lock()
_OPEN_CACHE: dict[tuple[str, str, str | None], xr.Dataset] = {}


def clear_open_cache() -> None:
    """Forget opened datasets (benchmarks measure a cold start; tests free memory)."""
    with _CACHE_LOCK:
        _OPEN_CACHE.clear()


class GridStore:
    """One dataset's Icechunk repository: create, append, add model runs, read, expire."""

    def __init__(self, storage: Storage, dataset_id: str) -> None:
        self.storage = storage
        self.dataset_id = dataset_id
        self.url = grid_url(storage, dataset_id)
        self._repo: icechunk.Repository | None = None

    # -- repository -------------------------------------------------------------------------
    def _absent_locally(self) -> bool:
        """A local repository that is not there: checked first, because opening Icechunk's
        local storage creates the folder, and a reader asking for a wrong id must not."""
        return not self.storage.is_s3 and not os.path.isdir(self.url)

    def exists(self) -> bool:
        if self._absent_locally():
            return False
        try:
            return bool(icechunk.Repository.exists(icechunk_storage(self.storage, self.dataset_id)))
        except Exception as exc:  # an unreachable bucket is a storage fault, not "missing"
            raise StorageError(f"grid {self.dataset_id}: cannot reach {self.url}: {exc}") from exc

    def repo(self, create: bool = False) -> icechunk.Repository:
        """The repository; created on first write, NotFound for readers if it is absent."""
        if self._repo is not None:
            return self._repo
        if not create and self._absent_locally():
            raise NotFound(f"no grid {self.dataset_id!r} in the lake (looked in {self.url})")
        ic_storage = icechunk_storage(self.storage, self.dataset_id)
        try:
            if icechunk.Repository.exists(ic_storage):
                self._repo = icechunk.Repository.open(ic_storage)
            elif create:
                self._repo = icechunk.Repository.create(ic_storage)
            else:
                raise NotFound(f"no grid {self.dataset_id!r} in the lake (looked in {self.url})")
        except NotFound:
            raise
        except Exception as exc:
            raise StorageError(f"grid {self.dataset_id}: cannot open {self.url}: {exc}") from exc
        return self._repo

    def snapshot_id(self) -> str:
        """Id of the newest commit on main: a cheap way to tell if a cached read is stale."""
        return str(self.repo().lookup_branch("main"))

    # -- reading ----------------------------------------------------------------------------
    def open(self, group: str | None = None, snapshot: str | None = None) -> xr.Dataset:
        """The dataset (lazy, Dask-backed) at the newest commit or at `snapshot`.

        Opened datasets are cached per snapshot, so serving many tiles costs one open per
        commit; an append makes a new snapshot and the next request sees it.
        """
        snap = snapshot or self.snapshot_id()
        key = (self.url, snap, group)
        with _CACHE_LOCK:
            cached = _OPEN_CACHE.get(key)
        if cached is not None:
            return cached
        session = self.repo().readonly_session(snapshot_id=snap)
        try:
            ds = xr.open_zarr(
                session.store, group=group, consolidated=False, decode_coords="all", chunks={}
            )
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise NotFound(f"grid {self.dataset_id}: no group {group!r} in {self.url}") from exc
        with _CACHE_LOCK:
            if len(_OPEN_CACHE) > 64:
                _OPEN_CACHE.clear()
            _OPEN_CACHE[key] = ds
        return ds

    def history(self) -> list[dict[str, Any]]:
        """Commits on main, newest first: id, time, message."""
        return [
            {"id": s.id, "written_at": s.written_at, "message": s.message}
            for s in self.repo().ancestry(branch="main")
        ]

    def runs(self) -> list[str]:
        """Reference times (ISO, UTC) of the model runs kept in the repository."""
        session = self.repo().readonly_session("main")
        root = zarr.open_group(session.store, mode="r")
        if RUNS_GROUP not in root:
            return []
        runs = root[RUNS_GROUP]
        if not isinstance(runs, zarr.Group):
            return []
        return sorted(str(k) for k in runs.group_keys())

    # -- writing ----------------------------------------------------------------------------
    def write(self, ds: xr.Dataset, message: str, time_dim: str = "time") -> str:
        """Replace the whole grid with `ds` in one commit; returns the snapshot id."""
        repo = self.repo(create=True)
        session = repo.writable_session("main")
        plan = chunk_plan(ds, time_dim)
        ds = _clean_for_zarr(ds).chunk(_dask_chunks(ds, plan))
        ds.to_zarr(session.store, mode="w", consolidated=False, encoding=_encoding(ds, plan))
        snap = str(session.commit(message))
        log.info("grid %s: wrote %s (%s) snapshot=%s", self.dataset_id, message, _extent(ds), snap)
        return snap

    def append(
        self,
        ds: xr.Dataset,
        message: str,
        time_dim: str = "time",
        on_written: Callable[[], None] | None = None,
    ) -> str:
        """Add time steps after the current end in one commit; creates the grid if absent.

        Steps at or before the stored end are skipped (re-ingesting a file changes nothing).
        `on_written` runs after the chunks are written and before the commit (progress
        reporting); if the process dies there, readers still see the previous commit.
        """
        if not self.exists():
            return self.write(ds, message, time_dim)
        current = self.open()
        if time_dim not in current.dims:
            raise StorageError(f"grid {self.dataset_id}: stored grid has no {time_dim!r} dim")
        end = current[time_dim].values.max()
        new = ds.sel({time_dim: ds[time_dim] > end})
        if new.sizes.get(time_dim, 0) == 0:
            log.info("grid %s: nothing newer than %s; unchanged", self.dataset_id, end)
            return self.snapshot_id()
        missing = sorted(str(v) for v in set(current.data_vars) ^ set(new.data_vars))
        if missing:
            raise StorageError(
                f"grid {self.dataset_id}: append has different variables than the store: {missing}"
            )
        new = new.drop_vars([v for v in new.variables if time_dim not in new[v].dims])
        plan = {str(v): int(current[v].encoding["chunks"][0]) for v in [time_dim]}
        zchunk = plan[time_dim]
        # Dask chunks along time must line up with the Zarr chunks the append lands in:
        # the first fills the stored partial chunk, the rest are whole chunks.
        n = new.sizes[time_dim]
        first = min(n, zchunk - current.sizes[time_dim] % zchunk)
        steps = [first] + [zchunk] * ((n - first) // zchunk)
        if sum(steps) < n:
            steps.append(n - sum(steps))
        space = {str(d): current.chunksizes[d][0] for d in current.chunksizes if d != time_dim}
        new = _clean_for_zarr(new).chunk({time_dim: tuple(steps), **space})
        for name in new.variables:
            new[name].encoding.pop("_FillValue", None)
        session = self.repo().writable_session("main")
        new.to_zarr(session.store, append_dim=time_dim, consolidated=False)
        if on_written is not None:
            on_written()
        snap = str(session.commit(message))
        log.info(
            "grid %s: appended %d steps (%s) snapshot=%s",
            self.dataset_id,
            new.sizes[time_dim],
            message,
            snap,
        )
        return snap

    def add_run(
        self,
        ds: xr.Dataset,
        reference_time: datetime | np.datetime64 | str,
        keep_superseded: bool = False,
        time_dim: str = "time",
    ) -> str:
        """Store a model run and rebuild the best estimate, in one commit.

        The best estimate keeps, for every valid time, the value from the newest run that
        covers it: times before the new run come from what the best estimate held, the rest
        from the new run. A run older than a stored one is kept but does not change the
        best estimate. Unless `keep_superseded`, older runs are deleted in the same commit
        (retention: a newer forecast replaces the one it supersedes).
        """
        ref = pd.Timestamp(reference_time).tz_localize(None)
        key = ref.strftime("%Y%m%dT%H%M%SZ")
        had_runs = self.runs() if self.exists() else []
        newest_before = max(had_runs) if had_runs else None
        run = ds.assign_coords(forecast_reference_time=np.datetime64(ref.to_datetime64(), "ns"))
        run["forecast_reference_time"].attrs.update(
            standard_name="forecast_reference_time", long_name="model run reference time"
        )
        plan = chunk_plan(run, time_dim)
        groups: dict[str | None, xr.Dataset] = {}
        dropped: list[str] = []
        if newest_before is not None and key <= newest_before:
            if not keep_superseded:
                log.info(
                    "grid %s: run %s is not newer than stored run %s; superseded, not kept",
                    self.dataset_id,
                    key,
                    newest_before,
                )
                return self.snapshot_id()
            groups[f"{RUNS_GROUP}/{key}"] = run
            mode_root = False
        else:
            # Writing the root with mode="w" clears its child groups, so every run that is
            # kept is read first and written back in the same commit.
            groups[None] = self._best_with(run, time_dim)
            for old in had_runs:
                if keep_superseded:
                    groups[f"{RUNS_GROUP}/{old}"] = self.open(group=f"{RUNS_GROUP}/{old}").load()
                else:
                    dropped.append(old)
            groups[f"{RUNS_GROUP}/{key}"] = run
            mode_root = True
        session = self.repo(create=True).writable_session("main")
        for group, data in groups.items():
            clean = _clean_for_zarr(data).chunk(_dask_chunks(data, plan))
            clean.to_zarr(
                session.store,
                group=group,
                mode="w" if (group is None or mode_root or group.endswith(key)) else "a",
                consolidated=False,
                encoding=_encoding(clean, plan),
            )
        snap = str(session.commit(f"model run {key}"))
        log.info(
            "grid %s: run %s stored (%s); superseded runs dropped: %s",
            self.dataset_id,
            key,
            _extent(run),
            ", ".join(dropped) or "none",
        )
        return snap

    def _best_with(self, run: xr.Dataset, time_dim: str) -> xr.Dataset:
        """The best estimate after adding `run`: older times from the stored best, the rest new."""
        run = run.copy()
        frt = run["forecast_reference_time"].values
        run = run.drop_vars("forecast_reference_time")
        run["forecast_reference_time"] = (time_dim, np.full(run.sizes[time_dim], frt))
        run["forecast_reference_time"].attrs.update(standard_name="forecast_reference_time")
        if not self.exists():
            return run
        try:
            best = self.open().load()
        except NotFound:
            return run
        if time_dim not in best.dims:
            return run
        start = run[time_dim].values.min()
        older = best.sel({time_dim: best[time_dim] < start})
        if older.sizes[time_dim] == 0:
            return run
        return xr.concat([older, run], dim=time_dim, data_vars="minimal", coords="minimal")

    def expire(self, older_than: datetime) -> tuple[int, int]:
        """Forget commits older than `older_than` and delete the objects only they used.

        This is what finally frees the storage of superseded runs and replaced data: until
        then every earlier version stays readable (time travel). Returns (commits expired,
        objects deleted).
        """
        repo = self.repo()
        expired = repo.expire_snapshots(older_than)
        summary = repo.garbage_collect(older_than)
        deleted = int(
            getattr(summary, "chunks_deleted", 0)
            + getattr(summary, "manifests_deleted", 0)
            + getattr(summary, "snapshots_deleted", 0)
        )
        log.info(
            "grid %s: expired %d commits older than %s, deleted %d objects",
            self.dataset_id,
            len(expired),
            older_than,
            deleted,
        )
        return len(expired), deleted

    # -- description ------------------------------------------------------------------------
    def info(self) -> GridInfo:
        """Variables, bbox, time range and runs, from metadata only."""
        ds = self.open()
        variables = [
            GridVariable(
                name=str(n),
                standard_name=v.attrs.get("standard_name"),
                units=v.attrs.get("units"),
                long_name=v.attrs.get("long_name"),
                dims=tuple(str(d) for d in v.dims),
            )
            for n, v in ds.data_vars.items()
            if v.ndim >= 2
        ]
        bbox = None
        lat = _coord(ds, ("lat", "latitude"))
        lon = _coord(ds, ("lon", "longitude"))
        if lat is not None and lon is not None:
            bbox = (
                float(lon.min()),
                float(lat.min()),
                float(lon.max()),
                float(lat.max()),
            )
        t0 = t1 = None
        ntimes = 0
        if "time" in ds.coords and ds["time"].size:
            times = pd.to_datetime(ds["time"].values)
            t0, t1 = times.min().to_pydatetime(), times.max().to_pydatetime()
            ntimes = int(ds["time"].size)
        extra = {
            str(d): [float(x) for x in ds[d].values]
            for d in ds.dims
            if d not in ("time", "lat", "lon", "latitude", "longitude") and d in ds.coords
        }
        return GridInfo(
            dataset_id=self.dataset_id,
            url=self.url,
            variables=variables,
            bbox=bbox,
            time_start=t0,
            time_end=t1,
            times=ntimes,
            runs=self.runs(),
            snapshot=self.snapshot_id(),
            attrs=dict(ds.attrs),
            extra_dims=extra,
        )


def _coord(ds: xr.Dataset, names: tuple[str, ...]) -> np.ndarray | None:
    for name in names:
        if name in ds.coords:
            return np.asarray(ds[name].values)
    return None


def _extent(ds: xr.Dataset) -> str:
    if "time" in ds.coords and ds["time"].size:
        t = pd.to_datetime(ds["time"].values)
        return f"{ds['time'].size} times {t.min():%Y-%m-%dT%H:%M}..{t.max():%Y-%m-%dT%H:%M}"
    return "no time axis"


def list_grids(storage: Storage) -> list[GridInfo]:
    """Every grid in the lake, described (for the catalog, the portal and `lake status`)."""
    out: list[GridInfo] = []
    for url in storage.list(storage.url(GRIDS)):
        dataset_id = url.rstrip("/").rsplit("/", 1)[-1]
        store = GridStore(storage, dataset_id)
        try:
            out.append(store.info())
        except (NotFound, StorageError) as exc:
            log.warning("grid %s: skipped in listing: %s", dataset_id, exc)
    return out


def open_grid(storage: Storage, dataset_id: str, group: str | None = None) -> xr.Dataset:
    """The newest committed version of a grid, lazily (what notebooks and servers read)."""
    return GridStore(storage, dataset_id).open(group=group)
