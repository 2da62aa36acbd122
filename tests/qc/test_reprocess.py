"""`lake qc reprocess` on a real Dask cluster (scheduler and two worker processes started
here on 127.0.0.1 with the `dask` CLI) gives the same flags as the local path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import QC_COLUMNS, ObservationTable
from qc.on_write import Planner, qc_before_write
from qc.reprocess import reprocess
from qc.runner import flag_table
from tests.qc.support import HUMBOLDT_TESTS, humboldt_rows, make_stream
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

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


@pytest.mark.slow
def test_reprocess_on_a_dask_cli_cluster_equals_the_local_path(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:

    rows = three_stations(2500)
    new = make_stream(tests=NEW_TESTS)
    expected = flag_table(rows, Planner(new)).sort_by(
        [("station_id", "ascending"), ("time", "ascending")]
    )

    remote = build(Settings(root=str(tmp_path / "remote")), rows)
    before = flags_of(remote)
    changed_expected = sum(
        pc.sum(pc.not_equal(before[c], expected[c])).as_py() for c in ("qc_spike", "qc_agg")
    )
    assert changed_expected > 100  # the new thresholds really change flags
    with dask_cluster.client() as client:
        result = reprocess(remote, new, client=client)
    assert result.series == 3
    assert result.changed > 0
    # Both worker processes did part of the work.
    assert dask_cluster.workers_that_ran("reprocess_series") == set(dask_cluster.workers)

    local = build(Settings(root=str(tmp_path / "local")), rows)
    local_result = reprocess(local, new, workers=2)  # default: a local cluster (spawn)
    assert local_result.changed == result.changed

    got_remote, got_local = flags_of(remote), flags_of(local)
    for column in FLAGS:
        assert got_remote[column].equals(got_local[column]), column
        diff = pc.sum(pc.not_equal(got_remote[column], expected[column])).as_py()
        assert diff == 0, f"{column}: {diff} values differ from a whole-series run"
    # Reprocessing again finds nothing to change.
    with dask_cluster.client() as client:
        assert reprocess(remote, new, client=client).changed == 0


def test_reprocess_a_window_changes_only_that_window(tmp_path: Path) -> None:
    """--since/--until: values in the window get the new flags (with the stored values
    around it as context), values outside keep theirs. Runs in-process (a Dask client on
    threads) to stay fast; the cluster test above covers processes."""
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
