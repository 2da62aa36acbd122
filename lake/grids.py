"""Grid stores: one Icechunk repository of Zarr v3 per gridded dataset, under `<root>/grids/<id>`.

Icechunk makes every write a transaction: an append along time or a new model run is one
commit, so a reader sees a grid only when it is whole, and a writer killed half-way leaves the
last commit (the previous extent) intact. The same calls work on a local folder and on any
S3-compatible bucket (`icechunk.s3_storage` with the settings' endpoint).

Model runs live in groups `runs/<reference time>`; the root group holds the best estimate
across runs (for every valid time, the newest run that covers it), which is what tiles,
OPeNDAP and EDR serve. Superseded runs are dropped in the same commit unless retention keeps
them (`lake.grid_runs`); chunking and encodings are in `lake.grid_layout`.
"""

from __future__ import annotations

import contextlib
import itertools
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
from icechunk.xarray import to_icechunk

from lake import grid_runs
from lake.errors import NotFound, StorageError
from lake.grid_layout import (
    RUNS_GROUP,
    chunk_plan,
    clean_for_zarr,
    extent_text,
    write_zarr,
)
from lake.names import check_dataset_id
from lake.storage import Storage

log = logging.getLogger(__name__)

GRIDS = "grids"

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
        self.dataset_id = check_dataset_id(dataset_id)
        self.url = grid_url(storage, dataset_id)
        self._repo: icechunk.Repository | None = None

    # -- repository -------------------------------------------------------------------------
    def _absent_locally(self) -> bool:
        """A local repository that is not there: checked first, because opening Icechunk's
        local storage creates the folder, and a reader asking for a wrong id must not."""
        return not self.storage.is_s3 and not os.path.isdir(self.url)

    def exists(self) -> bool:
        """Whether the grid holds data: a repository with at least one commit after its
        creation. A repository a crash left before its first commit does not count."""
        if self._absent_locally():
            return False
        try:
            ic_storage = icechunk_storage(self.storage, self.dataset_id)
            if not icechunk.Repository.exists(ic_storage):
                return False
            return _has_commit(self.repo())
        except NotFound:
            return False
        except StorageError:
            raise
        except Exception as exc:  # an unreachable bucket is a storage fault, not "missing"
            raise StorageError(f"grid {self.dataset_id}: cannot reach {self.url}: {exc}") from exc

    def repo(self, create: bool = False) -> icechunk.Repository:
        """The repository; created on first write, NotFound for readers if it is absent.

        A first write that finds the remains of a creation a crash cut short (files under
        the grid's prefix but no repository) removes them and creates the repository anew:
        nothing was ever committed there, so nothing a reader saw is lost.
        """
        if self._repo is not None:
            return self._repo
        if not create and self._absent_locally():
            raise NotFound(f"no grid {self.dataset_id!r} in the lake")
        ic_storage = icechunk_storage(self.storage, self.dataset_id)
        try:
            if icechunk.Repository.exists(ic_storage):
                self._repo = icechunk.Repository.open(ic_storage)
            elif create:
                if self._leftovers():
                    log.warning(
                        "grid %s: removing what a crash left of its first creation",
                        self.dataset_id,
                    )
                    self.storage.fs.rm(self.url, recursive=True)
                    ic_storage = icechunk_storage(self.storage, self.dataset_id)
                self._repo = icechunk.Repository.create(ic_storage)
            else:
                raise NotFound(f"no grid {self.dataset_id!r} in the lake")
        except NotFound:
            raise
        except Exception as exc:
            raise StorageError(f"grid {self.dataset_id}: cannot open {self.url}: {exc}") from exc
        return self._repo

    def _leftovers(self) -> bool:
        """Files under the grid's prefix (where no repository is)."""
        try:
            return bool(self.storage.fs.find(self.url))
        except FileNotFoundError:
            return False

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
            ds: xr.Dataset = xr.open_zarr(
                session.store, group=group, consolidated=False, decode_coords="all", chunks={}
            )
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise NotFound(f"grid {self.dataset_id}: no group {group!r}") from exc
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
        written = write_zarr(ds, session.store, chunk_plan(ds, time_dim))
        snap = str(session.commit(message))
        log.info(
            "grid %s: wrote %s (%s) snapshot=%s",
            self.dataset_id,
            message,
            extent_text(written),
            snap,
        )
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
        new = clean_for_zarr(new).chunk({time_dim: tuple(steps), **space})
        for name in new.variables:
            new[name].encoding.pop("_FillValue", None)
        session = self.repo().writable_session("main")
        # Icechunk's writer: with Dask's scheduler a distributed client, the workers write
        # the chunks (each into a fork of this session) and the forks are merged back here,
        # so the commit below holds every chunk; on threads it writes as `to_zarr` would.
        to_icechunk(new, session, append_dim=time_dim)
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
        """Store a model run and rebuild the best estimate, in one commit (`lake.grid_runs`);
        unless `keep_superseded`, older runs are deleted in the same commit."""
        return grid_runs.add_run(self, ds, reference_time, keep_superseded, time_dim)

    def expire(self, older_than: datetime) -> tuple[int, int]:
        """Forget commits older than `older_than` and delete the objects only they used,
        freeing superseded runs and replaced data; returns (commits expired, objects deleted)."""
        return grid_runs.expire(self, older_than)

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


def _has_commit(repo: icechunk.Repository) -> bool:
    """Whether main has a commit after the repository's initial (empty) one."""
    return len(list(itertools.islice(repo.ancestry(branch="main"), 2))) > 1


def _coord(ds: xr.Dataset, names: tuple[str, ...]) -> np.ndarray | None:
    for name in names:
        if name in ds.coords:
            return np.asarray(ds[name].values)
    return None


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


__all__ = [
    "GRIDS",
    "RUNS_GROUP",
    "GridInfo",
    "GridStore",
    "GridVariable",
    "chunk_plan",  # planned here before it moved to lake.grid_layout; callers import it here
    "clear_open_cache",
    "grid_url",
    "icechunk_storage",
    "list_grids",
    "open_grid",
]
