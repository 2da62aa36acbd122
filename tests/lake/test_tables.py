"""The observation table on a local folder and on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake.errors import StorageError
from lake.storage import Storage
from lake.tables import KEY_COLUMNS, ObservationTable, conform, dedupe
from tests.lake.tables_support import batch, real_rows, total


def test_write_twice_changes_nothing(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = batch(2000)
    first = table.write(rows)
    assert first.inserted == 2000
    version = table.delta().version()
    again = table.write(rows)
    assert (again.inserted, again.updated) == (0, 0)
    assert table.delta().version() == version  # no commit at all for an unchanged batch
    stored = table.dataset().to_table()
    assert stored.num_rows == 2000
    assert total(stored) == pytest.approx(total(rows))


def test_newer_ingest_wins_where_values_differ(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = batch(500)
    table.write(rows)
    changed = rows.set_column(
        rows.schema.get_field_index("value"), "value", pc.add(rows.column("value"), 1.0)
    ).slice(0, 100)
    result = table.write(pa.concat_tables([changed, rows.slice(100, 50)]))
    assert (result.inserted, result.updated) == (0, 100)
    stored = table.dataset().to_table()
    assert stored.num_rows == 500
    assert total(stored) == pytest.approx(total(rows) + 100)


def test_keys_separate_datasets_and_depths(storage: Storage) -> None:
    table = ObservationTable(storage)
    table.write(batch(300, dataset_id="a"))
    table.write(batch(300, dataset_id="b"))
    deeper = batch(300, dataset_id="a")
    deeper = deeper.set_column(
        deeper.schema.get_field_index("z"), "z", pa.array([-5.0] * deeper.num_rows)
    )
    table.write(deeper)
    assert table.dataset().to_table().num_rows == 900


def test_time_is_stored_as_naive_utc(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = batch(10)
    assert rows.schema.field("time").type.tz == "UTC"
    table.write(rows)
    stored = table.dataset().to_table().sort_by("time")
    assert stored.schema.field("time").type == pa.timestamp("us")
    expected = sorted(rows.column("time").cast(pa.timestamp("us")).to_pylist())
    assert stored.column("time").to_pylist() == expected


def test_compact_merges_files_and_sorts(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = real_rows()
    # Many small writes, in reverse order, as a real-time trickle would leave them.
    for start in range(0, 6000, 1000):
        table.write(rows.slice(6000 - start - 1000, 1000))
    files_before = len(table.delta().file_uris())
    rewritten = table.compact(min_files=2)
    assert rewritten >= 1
    after = table.delta()
    assert len(after.file_uris()) < files_before
    stored = after.to_pyarrow_dataset().to_table()
    assert stored.num_rows == 6000
    assert total(stored) == pytest.approx(total(rows.slice(0, 6000)))
    # Inside each file rows are ordered by station then time.
    for fragment in after.to_pyarrow_dataset().get_fragments():
        part = fragment.to_table(columns=["station_id", "time"])
        times = part.column("time").to_numpy()
        assert (times[1:] >= times[:-1]).all()
    # Vacuum removes what compaction replaced, and the table still reads the same.
    removed = table.vacuum(timedelta(0))
    assert len(removed) >= files_before - len(after.file_uris())
    assert table.dataset().to_table().num_rows == 6000


def test_compact_leaves_large_older_files_alone(storage: Storage) -> None:
    table = ObservationTable(storage)
    rows = real_rows().sort_by("time")
    history, polls = rows.slice(0, 5000), rows.slice(5000, 600)
    table.write(history)
    table.compact(min_files=1)
    sizes = {
        a["path"]: a["size_bytes"]
        for a in pa.table(table.delta().get_add_actions(flatten=True)).to_pylist()
    }
    # A trickle of later polls, each a file of its own.
    for start in range(0, 600, 100):
        table.write(polls.slice(start, 100))
    after_polls = pa.table(table.delta().get_add_actions(flatten=True)).to_pylist()
    small = 1 + max(a["size_bytes"] for a in after_polls if a["path"] not in sizes)
    big = {path for path, size in sizes.items() if size >= small}
    assert big, "compaction's files should be larger than a poll's"
    rewritten = table.compact(min_files=2, small_bytes=small)
    assert rewritten >= 1
    active = {a["path"] for a in pa.table(table.delta().get_add_actions(flatten=True)).to_pylist()}
    # The large, already sorted files are still the table's own; the polls were merged.
    assert big <= active
    stored = table.dataset().to_table()
    assert stored.num_rows == 5600
    assert total(stored) == pytest.approx(total(rows.slice(0, 5600)))


def test_a_compacted_file_under_the_size_limit_is_not_rewritten(storage: Storage) -> None:
    """A small region's compacted month is far under the 32 MB limit: it counts as done
    because it is more than twice its partition's polls, so polls are merged from their
    own earliest time and the compacted file stays."""
    table = ObservationTable(storage)
    rows = real_rows().sort_by("time")
    table.write(rows.slice(0, 5000))
    table.compact(min_files=1)
    compacted = {
        a["path"] for a in pa.table(table.delta().get_add_actions(flatten=True)).to_pylist()
    }
    for start in range(5000, 5600, 100):
        table.write(rows.slice(start, 100))
    plan = table.compaction_plan(min_files=2, compacted_min_bytes=0)
    assert plan, "the polls' small files should be planned for a rewrite"
    assert all(part.since is not None for part in plan)
    assert all("time >=" in part.predicate for part in plan)
    # The old absolute rule alone (everything under 32 MB is small) would rewrite it all.
    whole = table.compaction_plan(min_files=2)
    assert any(part.since is None for part in whole)
    for part in plan:
        table.rewrite_partition(part)
    active = {a["path"] for a in pa.table(table.delta().get_add_actions(flatten=True)).to_pylist()}
    assert compacted <= active
    assert table.dataset().to_table().num_rows == 5600


def test_batch_with_repeated_keys_keeps_the_last(storage: Storage) -> None:
    rows = batch(20)
    twice = pa.concat_tables(
        [
            rows,
            rows.set_column(
                rows.schema.get_field_index("value"),
                "value",
                pc.multiply(rows.column("value"), 2.0),
            ),
        ]
    )
    deduped = dedupe(conform(twice))
    assert deduped.num_rows == 20
    assert total(deduped) == pytest.approx(2 * total(rows))
    table = ObservationTable(storage)
    assert table.write(twice).inserted == 20


def test_batch_missing_a_required_column_is_refused(storage: Storage) -> None:
    table = ObservationTable(storage)
    table.write(batch(10))
    with pytest.raises(StorageError, match="'station_id'"):
        table.write(batch(10, 100).drop_columns(["station_id"]))
    with pytest.raises(StorageError, match="empty 'time'"):
        rows = batch(5, 200)
        table.write(
            rows.set_column(
                rows.schema.get_field_index("time"),
                "time",
                pa.nulls(5, pa.timestamp("us", tz="UTC")),
            )
        )
    assert table.dataset().to_table().num_rows == 10


def test_key_columns_are_the_design_keys() -> None:
    assert KEY_COLUMNS == ("dataset_id", "station_id", "variable", "z", "time")


def test_a_lake_made_again_at_the_same_place_is_read_afresh(tmp_path) -> None:
    from lake.settings import Settings

    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    table = ObservationTable(storage)
    for offset in (0, 50, 100):  # the first table reaches a version the second never has
        table.write(batch(50, offset=offset))
    assert table.dataset().count_rows() == 150
    shutil.rmtree(tmp_path / "lake")
    table.write(batch(20, offset=200))
    assert table.dataset().count_rows() == 20
