"""A series split into many small batches gets the same flags as the whole series at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import QC_COLUMNS, ObservationTable
from qc.on_write import Planner, qc_before_write
from qc.runner import flag_table
from tests.qc.support import humboldt_rows, make_stream

FLAGS = ["qc_agg", *QC_COLUMNS]


def stored(storage: Storage) -> pa.Table:
    rows = ObservationTable(storage).dataset().to_table()
    return rows.sort_by("time").select(["time", "value", *FLAGS])


def batches(n: int, seed: int) -> list[tuple[int, int]]:
    """Cut points of random small batches (1 to 120 values), some a single value."""
    rng = np.random.default_rng(seed)
    cuts, start = [], 0
    while start < n:
        size = int(rng.choice([1, 2, 3, 17, 40, 120]))
        cuts.append((start, min(n, start + size)))
        start += size
    return cuts


@pytest.mark.slow
def test_small_batches_in_order_equal_the_whole_series(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    stream = make_stream()
    rows = humboldt_rows(n=1500)
    whole = flag_table(rows, Planner(stream)).select(["time", "value", *FLAGS])
    cuts = batches(rows.num_rows, seed=5)
    assert len(cuts) >= 25 and any(b - a == 1 for a, b in cuts)
    for a, b in cuts:
        ObservationTable(storage).write(qc_before_write(storage, stream, rows.slice(a, b - a)))
    lake = stored(storage)
    assert lake.num_rows == rows.num_rows
    for column in FLAGS:
        diff = pc.sum(pc.not_equal(lake[column], whole[column])).as_py()
        assert diff == 0, f"{column}: {diff} values differ from the whole-series flags"
    # The context really mattered: flagged alone, a batch's last value has no next value
    # and its spike test says 2; in the lake it got the whole-series flag.
    alone = flag_table(rows.slice(0, 40), Planner(stream))
    assert alone["qc_spike"].to_pylist()[-1] == 2
    assert lake["qc_spike"].to_pylist()[39] == whole["qc_spike"].to_pylist()[39] != 2


@pytest.mark.slow
def test_backfill_out_of_order_equals_the_whole_series(local_settings: Settings) -> None:
    """History arriving late and in pieces (a backfill) ends with the same flags."""
    storage = Storage.from_settings(local_settings)
    stream = make_stream()
    rows = humboldt_rows(n=1200)
    whole = flag_table(rows, Planner(stream)).select(["time", "value", *FLAGS])
    cuts = batches(rows.num_rows, seed=11)
    order = np.random.default_rng(3).permutation(len(cuts))
    for i in order:
        a, b = cuts[i]
        ObservationTable(storage).write(qc_before_write(storage, stream, rows.slice(a, b - a)))
    lake = stored(storage)
    for column in FLAGS:
        diff = pc.sum(pc.not_equal(lake[column], whole[column])).as_py()
        assert diff == 0, f"{column}: {diff} values differ from the whole-series flags"


def test_reingesting_a_batch_changes_nothing(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    stream = make_stream()
    rows = humboldt_rows(n=600)
    table = ObservationTable(storage)
    table.write(qc_before_write(storage, stream, rows))
    again = table.write(qc_before_write(storage, stream, rows.slice(200, 100)))
    assert again.changed == 0
