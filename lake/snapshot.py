"""The active files of a Delta table, kept open and pruned by partition and statistics.

A station read touches a handful of the table's files. Asking DuckDB's `delta_scan` to
find them replays the table's log at every query; instead the table stays open here, is
brought up to date with `update_incremental` (one listing of the log when nothing changed),
and its add actions, with their partition values and per-file minimum and maximum, are
filtered in Arrow before any Parquet file is opened.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from lake.delta import open_table


@dataclass(frozen=True)
class FileFilter:
    """Which files may hold matching rows: equality on partitions, ranges on statistics.

    `partitions` maps a partition column to the values wanted (None: any). `within` maps a
    data column to an inclusive (low, high) range, either end None; a file is kept when its
    own [min, max] of that column overlaps the range.
    """

    partitions: Mapping[str, Sequence[object] | None]
    within: Mapping[str, tuple[object | None, object | None]]


class TableFiles:
    """One Delta table's active files, refreshed to the newest version on every call."""

    def __init__(self, url: str, storage_options: dict[str, str] | None) -> None:
        self.url = url.rstrip("/")
        self._options = storage_options
        self._table: DeltaTable | None = None
        self._version = -1
        self._actions: pa.Table | None = None
        self._lock = threading.Lock()

    def actions(self) -> pa.Table | None:
        """The add actions of the newest version (flattened), or None if no table exists."""
        with self._lock:
            if self._table is None:
                self._table = open_table(self.url, self._options)
                if self._table is None:
                    return None
            else:
                self._table.update_incremental()
            version = self._table.version()
            if version != self._version or self._actions is None:
                self._actions = pa.table(self._table.get_add_actions(flatten=True))
                self._version = version
            return self._actions

    def select(self, wanted: FileFilter) -> list[str]:
        """URLs of the active files that may hold rows matching `wanted`."""
        actions = self.actions()
        if actions is None:
            return []
        return select_files(actions, self.url, wanted)


def select_files(actions: pa.Table, table_url: str, wanted: FileFilter) -> list[str]:
    """URLs of the files among `actions` (a table's flattened add actions) that may hold
    rows matching `wanted`."""
    if actions.num_rows == 0:
        return []
    keep = pa.array([True] * actions.num_rows)
    for column, values in wanted.partitions.items():
        if values is None:
            continue
        field = f"partition.{column}"
        cast = pa.array(values).cast(actions.schema.field(field).type)
        keep = pc.and_(keep, pc.is_in(actions[field], value_set=cast))
    for column, (low, high) in wanted.within.items():
        low_field, high_field = f"min.{column}", f"max.{column}"
        if low_field not in actions.column_names:
            continue  # no statistics for the column: every file may match
        kind = actions.schema.field(high_field).type
        # A file without statistics (null min/max) is kept: it may hold anything.
        if low is not None:
            above = pc.greater_equal(actions[high_field], pa.scalar(low).cast(kind))
            keep = pc.and_(keep, pc.fill_null(above, True))
        if high is not None:
            below = pc.less_equal(actions[low_field], pa.scalar(high).cast(kind))
            keep = pc.and_(keep, pc.fill_null(below, True))
    paths = actions.filter(keep)["path"].to_pylist()
    base = table_url.rstrip("/")
    # Paths in the log are relative and URL-encoded (a partition value may hold spaces).
    return [p if "://" in p else f"{base}/{unquote(p)}" for p in paths]
