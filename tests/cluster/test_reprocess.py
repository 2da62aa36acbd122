"""`lake qc reprocess` on a real Dask cluster (`dask scheduler` and two `dask worker`
processes on 127.0.0.1) against moto's S3 server gives the same flags as a local cluster,
one task per series on both workers, and the changes in one commit."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from lake.settings import Settings
from lake.tables import ObservationTable
from qc.on_write import Planner
from qc.reprocess import reprocess
from qc.runner import flag_table
from tests.qc.support import make_stream
from tests.qc.test_reprocess import FLAGS, NEW_TESTS, build, flags_of, three_stations
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.s3]


def test_reprocess_on_a_dask_cli_cluster_equals_the_local_path(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    rows = three_stations(2500)
    new = make_stream(tests=NEW_TESTS)
    expected = flag_table(rows, Planner(new)).sort_by(
        [("station_id", "ascending"), ("time", "ascending")]
    )

    remote = build(s3_settings, rows)
    before = flags_of(remote)
    changed_expected = sum(
        pc.sum(pc.not_equal(before[c], expected[c])).as_py() for c in ("qc_spike", "qc_agg")
    )
    assert changed_expected > 100  # the new thresholds really change flags
    version = ObservationTable(remote).delta().version()
    with dask_cluster.client() as client:
        result = reprocess(remote, new, client=client)
    assert ObservationTable(remote).delta().version() == version + 1  # one commit
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
