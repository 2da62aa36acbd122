"""`lake qc reprocess` over a window, on a Dask client in this process. The run on a real
cluster of `dask` CLI processes against S3 is in tests/cluster/test_reprocess.py, which
uses the lakes built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import QC_COLUMNS, ObservationTable
from qc.on_write import Planner, qc_before_write
from qc.reprocess import reprocess
from qc.runner import flag_table
from tests.qc.support import HUMBOLDT_TESTS, humboldt_rows, make_stream

FLAGS = ["qc_agg", *QC_COLUMNS]
STATIONS = ["urn:ioos:sensor:axiom:20363", "urn:ioos:sensor:test:b", "urn:ioos:sensor:test:c"]
#: New thresholds a data manager sets after the values were first flagged.
NEW_TESTS = {
    **HUMBOLDT_TESTS,
    "gross_range": {"fail_span": [0.5, 1800.0], "suspect_span": [40.0, 1200.0]},
    "spike": {"suspect_threshold": 150.0, "fail_threshold": 500.0},
}


def three_stations(n: int) -> pa.Table:
    """The real series at three stations (shifted values), so there are three series."""
    parts = []
    base = humboldt_rows(n=n)
    for i, station in enumerate(STATIONS):
        part = base.set_column(
            base.schema.get_field_index("station_id"), "station_id", pa.array([station] * n)
        )
        value = pc.add(part["value"], float(i * 7))
        parts.append(part.set_column(part.schema.get_field_index("value"), "value", value))
    return pa.concat_tables(parts)


def flags_of(storage: Storage) -> pa.Table:
    rows = ObservationTable(storage).dataset().to_table()
    return rows.sort_by([("station_id", "ascending"), ("time", "ascending")]).select(
        ["station_id", "time", *FLAGS]
    )


def build(settings: Settings, rows: pa.Table) -> Storage:
    storage = Storage.from_settings(settings)
    old = make_stream()
    table = ObservationTable(storage)
    half = rows.num_rows // 2
    table.write(qc_before_write(storage, old, rows.slice(0, half)))
    table.write(qc_before_write(storage, old, rows.slice(half)))
    return storage


def test_reprocess_a_window_changes_only_that_window(tmp_path: Path) -> None:
    """--since/--until: values in the window get the new flags (with the stored values
    around it as context), values outside keep theirs. Runs in-process (a Dask client on
    threads) to stay fast; tests/cluster covers processes."""
    from distributed import Client, LocalCluster

    rows = humboldt_rows(n=3000)
    storage = build(Settings(root=str(tmp_path / "lake")), rows)
    before = flags_of(storage)
    new = make_stream(tests=NEW_TESTS)
    whole_new = flag_table(rows, Planner(new))
    times = rows["time"].to_pylist()
    since, until = times[1000], times[1400]
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        result = reprocess(storage, new, since, until, client=client)
    assert result.changed > 0
    after = flags_of(storage)
    t = after["time"].to_numpy()
    inside = (t >= np.datetime64(since)) & (t <= np.datetime64(until))
    assert inside.sum() == 401
    for column in FLAGS:
        now = after[column].to_numpy()
        assert np.array_equal(now[inside], whole_new[column].to_numpy()[inside]), column
        outside = ~inside
        assert np.array_equal(now[outside], before[column].to_numpy()[outside]), column
