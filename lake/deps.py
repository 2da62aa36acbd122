"""What every part of the server may ask of the lake: `LakeDeps`, plus request id checks.

Every server part (tabledap, SQL, downloads, the portal's JSON, STAC, tiles) is installed
with the same `LakeDeps` instead of importing global getters, as xpublish plugins and
TiTiler factories receive theirs: a test can serve a temp-folder lake, and two apps can
serve two lakes in one process.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from lake.errors import LakeError, RequestError
from lake.names import DATASET_ID, check_dataset_id
from lake.reader import Lake
from lake.registry import Registry, Stream, load_registry
from lake.settings import Settings
from lake.storage import Storage

log = logging.getLogger(__name__)
__all__ = ["DATASET_ID", "LakeDeps", "check_dataset_id", "check_station_id"]
T = TypeVar("T")

#: Station ids: IOOS URNs and plain codes; no slashes, no `..`.
STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_\-.]{0,255}$")
RAW_ID = re.compile(r"^[0-9a-f]{64}$")


def check_station_id(station_id: str) -> str:
    """Return `station_id` if well-formed (an IOOS URN or a code), else raise RequestError."""
    if not STATION_ID.match(station_id) or ".." in station_id:
        raise RequestError(f"station id {station_id[:80]!r} is not valid")
    return station_id


@dataclass
class LakeDeps:
    """The lake one app serves, its settings, and its registry (re-read when the file changes)."""

    storage: Storage
    settings: Settings
    lake: Lake
    _registry: Registry | None = None
    _registry_mtime: float = -1.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _views_lock: threading.Lock = field(default_factory=threading.Lock)
    _views_at: float = -1.0
    _base: duckdb.DuckDBPyConnection | None = None
    _memo: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    #: Views are re-pointed at the newest table versions at most this often.
    refresh_s: float = 1.0

    @classmethod
    def create(cls, storage: Storage | None, settings: Settings) -> LakeDeps:
        storage = storage or Storage.from_settings(settings)
        return cls(storage=storage, settings=settings, lake=Lake(storage))

    def registry(self) -> Registry:
        """The stream registry; an unreadable file gives an empty one and a log line."""
        path = Path(self.settings.registry)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        with self._lock:
            if self._registry is None or mtime != self._registry_mtime:
                try:
                    self._registry = load_registry(path)
                except (LakeError, OSError) as exc:
                    log.warning("registry %s could not be read: %s", path, exc)
                    self._registry = Registry(streams=[], path=str(path))
                self._registry_mtime = mtime
            return self._registry

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run a query on its own DuckDB cursor, so requests run side by side.

        `Lake.sql` serializes every query behind one lock and re-reads the Delta logs each
        time; a server answering many clients refreshes the views at most once a second and
        gives each request a cursor of the same database (views and extensions are shared).
        """
        with self._views_lock:
            if self._base is None or time.monotonic() - self._views_at > self.refresh_s:
                self._base = self.lake.connection()  # views on the newest table versions
                self._views_at = time.monotonic()
            cursor = self._base.cursor()
        try:
            return cursor.execute(query, params).to_arrow_table()
        except duckdb.CatalogException:
            # An empty lake's views point at Arrow tables registered on the main connection
            # only; the locked path sees them.
            return self.lake.sql(query, params)
        finally:
            cursor.close()

    def memo(self, key: Any, ttl_s: float, compute: Callable[[], T]) -> T:
        """`compute()`, remembered for `ttl_s` seconds: metadata that every request needs (a
        dataset's columns) but that changes only when new variables are harvested."""
        now = time.monotonic()
        hit = self._memo.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        self._memo[key] = (now, value)
        return value

    def stream(self, dataset_id: str) -> Stream | None:
        """The registry entry of a dataset, or None for data not (or no longer) registered."""
        for stream in self.registry().streams:
            if stream.id == dataset_id:
                return stream
        return None
