"""A lake created before a QC column existed gains it, null in old rows, without rewrites."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from lake.reader import Lake
from lake.storage import Storage
from lake.tables import OBSERVATION_SCHEMA, PARTITION_COLUMNS, ObservationTable, conform
from tests.lake.tables_support import batch

#: The column the old table lacks: as if its QC test was added after the lake was created.
NEW = "qc_neighbor"


def old_table(storage: Storage, rows: int = 200) -> DeltaTable:
    """An observation table made with the schema minus NEW, holding `rows` real values."""
    url = storage.url("tables", "observations")
    options = storage.delta_options()
    schema = pa.schema([f for f in OBSERVATION_SCHEMA if f.name != NEW])
    DeltaTable.create(url, schema=schema, partition_by=PARTITION_COLUMNS, storage_options=options)
    write_deltalake(
        url,
        conform(batch(rows)).drop_columns([NEW]),
        mode="append",
        partition_by=PARTITION_COLUMNS,
        storage_options=options,
    )
    table = DeltaTable(url, storage_options=options)
    assert NEW not in {f.name for f in table.schema().fields}
    return table


def flagged(n: int, offset: int) -> pa.Table:
    """n real rows not in the old table, each with NEW set to 1."""
    rows = conform(batch(n, offset))
    return rows.set_column(
        rows.schema.get_field_index(NEW), NEW, pa.array([1] * rows.num_rows, pa.int8())
    )


def test_opening_for_writing_adds_the_column_in_one_commit(storage: Storage) -> None:
    old = old_table(storage)
    files = set(old.file_uris())
    table = ObservationTable(storage).delta()
    # The column in one commit; a table made before checkpoints were tuned also gains its
    # checkpoint interval, in one more log-only commit.
    operations = [c["operation"] for c in table.history(table.version() - old.version())]
    assert sorted(operations) == ["ADD COLUMN", "SET TBLPROPERTIES"]
    assert set(table.file_uris()) == files  # the log changed, no data file was rewritten
    assert table.schema().to_arrow().field(NEW).nullable
    assert ObservationTable(storage).delta().version() == table.version()  # once only


def test_write_to_an_old_table_keeps_old_rows_with_null(storage: Storage) -> None:
    old = old_table(storage)
    reader = Lake(storage)
    assert reader.sql("SELECT count(*) AS n FROM observations_all")["n"][0].as_py() == 200
    result = ObservationTable(storage).write(flagged(100, 300))
    assert (result.inserted, result.updated) == (100, 0)
    stored = ObservationTable(storage).dataset().to_table()
    assert stored.num_rows == 300
    old_times = set(old.to_pyarrow_table().column("time").to_pylist())
    is_old = pc.is_in(stored["time"], pa.array(sorted(old_times), stored["time"].type))
    assert stored.filter(is_old)[NEW].null_count == 200
    assert stored.filter(pc.invert(is_old))[NEW].to_pylist() == [1] * 100
    for lake in (reader, Lake(storage)):  # a connection opened before the change, and a new one
        counts = lake.sql(
            f"SELECT {NEW} AS flag, count(*) AS n FROM observations_all GROUP BY 1 ORDER BY 1"
        ).to_pylist()
        assert counts == [{"flag": 1, "n": 100}, {"flag": None, "n": 200}]
        assert NEW in lake.sql("SELECT * FROM observations LIMIT 1").column_names


def test_old_table_reads_before_any_write(storage: Storage) -> None:
    """Reading never writes (a reader may hold read-only credentials): the views and the
    Arrow dataset work on a table not yet given the column, and the table is unchanged."""
    old = old_table(storage)
    lake = Lake(storage)
    assert lake.sql("SELECT count(*) AS n FROM observations")["n"][0].as_py() == 200
    assert lake.sql("SELECT * FROM observations_all").num_rows == 200
    dataset = ObservationTable(storage).dataset()
    assert dataset.to_table(columns=[NEW])[NEW].null_count == 200
    assert dataset.to_table().schema.names[: len(OBSERVATION_SCHEMA) - 1] == [
        f.name for f in OBSERVATION_SCHEMA if f.name != NEW
    ]
    assert DeltaTable(old.table_uri, storage_options=storage.delta_options()).version() == (
        old.version()
    )


def test_sql_names_the_new_column_before_any_write(storage: Storage) -> None:
    old_table(storage)
    rows = Lake(storage).sql(f"SELECT {NEW} FROM observations_all")
    assert rows[NEW].null_count == 200


def test_compaction_after_the_column_was_added(storage: Storage) -> None:
    """A table that gained a column has it last; compaction writes rows by column name."""
    old_table(storage)
    table = ObservationTable(storage)
    table.write(flagged(100, 300))
    assert table.compact(min_files=2) > 0
    stored = table.dataset().to_table()
    assert stored.num_rows == 300
    assert pc.sum(stored[NEW]).as_py() == 100 and stored[NEW].null_count == 200
