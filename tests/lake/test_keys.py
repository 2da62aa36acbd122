"""Integer keys (lake.keys) give the same answers as Arrow's group-by and join."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.keys import first_of_each, last_of_each, row_keys
from lake.series import SERIES_KEY, Marks, _summarize_by_group_by, summarize
from lake.tables import KEY_COLUMNS, conform
from tests.lake.tables_support import real_rows


def _with_repeats() -> pa.Table:
    """Real rows, a slice of them again with other values (a later request's)."""
    rows = conform(real_rows())
    again = rows.slice(100, 500)
    again = again.set_column(
        again.schema.get_field_index("value"), "value", pc.add(again.column("value"), 1.0)
    )
    return pa.concat_tables([rows, again])


def _as_set(table: pa.Table, columns: list[str]) -> set[tuple[object, ...]]:
    return set(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_coded_keys_keep_the_last_row_of_each_key_like_a_group_by() -> None:
    rows = _with_repeats()
    keys = row_keys(rows, KEY_COLUMNS)
    assert keys is not None
    indexed = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
    by_arrow = indexed.group_by(list(KEY_COLUMNS), use_threads=False).aggregate(
        [("__row", "max"), ("__row", "min")]
    )
    last = last_of_each(keys)
    first = first_of_each(keys)
    assert len(last) == by_arrow.num_rows == rows.num_rows - 500
    assert set(last.tolist()) == set(by_arrow.column("__row_max").to_pylist())
    assert set(first.tolist()) == set(by_arrow.column("__row_min").to_pylist())
    # The repeated keys keep the later request's value.
    kept = rows.take(pa.array(last))
    assert _as_set(kept, [*KEY_COLUMNS, "value"]) >= _as_set(
        rows.slice(rows.num_rows - 500), [*KEY_COLUMNS, "value"]
    )


def test_known_mask_matches_the_join_inside_and_outside_the_spans() -> None:
    rows = conform(real_rows())
    half = rows.slice(0, rows.num_rows // 2)
    stored = summarize(half).select([*SERIES_KEY, "first_time", "last_time"])
    # One series the lake holds under another station only: nothing of it is known.
    marks = Marks(stored)
    coded = marks.known_mask(rows)
    joined = marks._known_by_join(rows)
    assert coded.dtype == bool and len(coded) == rows.num_rows
    assert np.array_equal(coded, joined)
    assert 0 < coded.sum() < rows.num_rows
    fresh, known = marks.split_known(rows)
    assert fresh.num_rows + known.num_rows == rows.num_rows
    assert known.num_rows == int(coded.sum())
    # A series the marks do not name is never known.
    other = rows.set_column(
        rows.schema.get_field_index("station_id"),
        "station_id",
        pa.array(["urn:ioos:station:test:elsewhere"] * rows.num_rows),
    )
    assert not marks.known_mask(other).any()


def test_summary_by_codes_equals_the_group_by() -> None:
    rows = _with_repeats()
    shifted = rows.set_column(
        rows.schema.get_field_index("time"),
        "time",
        pc.add(rows.column("time"), pa.scalar(timedelta(days=400))),
    )
    both = pa.concat_tables([rows, shifted.cast(rows.schema)])
    coded = summarize(both).sort_by([(c, "ascending") for c in SERIES_KEY])
    arrow = _summarize_by_group_by(both).sort_by([(c, "ascending") for c in SERIES_KEY])
    assert coded.num_rows == arrow.num_rows > 0
    for name in ("dataset_id", "station_id", "variable", "z", "first_time", "last_time"):
        assert coded.column(name).to_pylist() == arrow.column(name).to_pylist(), name
