"""The table's active files, pruned by partition values and per-file statistics."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from lake.snapshot import FileFilter, TableFiles
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.lake.tables_support import batch

OTHER = "urn:ioos:station:wmo:00001"


def _station(rows: pa.Table, station_id: str) -> pa.Table:
    index = rows.schema.get_field_index("station_id")
    return rows.set_column(index, "station_id", pa.array([station_id] * rows.num_rows))


def test_files_are_pruned_by_station_time_and_variable(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = batch(400)
    table.write(rows)
    table.write(_station(rows, OTHER))
    files = TableFiles(table.url, storage.delta_options())
    everything = files.select(FileFilter(partitions={}, within={}))
    assert len(everything) == len(table.delta().file_uris())
    station = rows.column("station_id")[0].as_py()
    mine = files.select(FileFilter(partitions={}, within={"station_id": (station, station)}))
    other = files.select(FileFilter(partitions={}, within={"station_id": (OTHER, OTHER)}))
    # Each write sorted one station into its own files: no file serves both.
    assert mine and other
    assert not set(mine) & set(other)
    assert set(mine) | set(other) == set(everything)
    variable = rows.column("variable")[0].as_py()
    one = files.select(FileFilter(partitions={"variable": [variable]}, within={}))
    assert one and all(f"variable={variable}/" in url for url in one)
    assert files.select(FileFilter(partitions={"variable": ["no_such_variable"]}, within={})) == []
    future = files.select(FileFilter(partitions={}, within={"time": (datetime(2030, 1, 1), None)}))
    assert future == []


def test_a_new_write_is_seen_at_the_next_selection(storage: Storage) -> None:
    table = ObservationTable(storage)
    table.write(batch(100))
    files = TableFiles(table.url, storage.delta_options())
    before = files.select(FileFilter(partitions={}, within={"station_id": (OTHER, OTHER)}))
    table.write(_station(batch(100), OTHER))
    after = files.select(FileFilter(partitions={}, within={"station_id": (OTHER, OTHER)}))
    assert before == [] and len(after) > 0


def test_no_table_yet_means_no_files(storage: Storage) -> None:
    files = TableFiles(ObservationTable(storage).url, storage.delta_options())
    assert files.select(FileFilter(partitions={}, within={})) == []
