"""Station series already read, kept in memory up to a byte budget.

A key names the exact table files a read came from (Delta never rewrites a file under
the same name), so an entry cannot go stale: after a write or a compaction the same
request resolves to other files and misses. Entries leave least recently used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import xarray as xr


class SeriesCache:
    """Least-recently-used datasets, at most `budget_bytes` of them in memory."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[Hashable, xr.Dataset] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> xr.Dataset | None:
        """A copy of the cached dataset (the caller may change it freely), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
        return found.copy(deep=True)

    def put(self, key: Hashable, dataset: xr.Dataset) -> None:
        """Keep a copy of `dataset`, unless it alone is larger than the budget."""
        size = int(dataset.nbytes)
        if size > self.budget_bytes:
            return
        kept = dataset.copy(deep=True)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._entries[key] = kept
            self._bytes += size
            while self._bytes > self.budget_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= int(dropped.nbytes)
