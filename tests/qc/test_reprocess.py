"""`lake qc reprocess` on a real Dask cluster (scheduler and two worker processes started
here on 127.0.0.1 with the `dask` CLI) gives the same flags as the local path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
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
from tests.conftest import REPO
from tests.qc.support import HUMBOLDT_TESTS, humboldt_rows, make_stream

FLAGS = ["qc_agg", *QC_COLUMNS]
STATIONS = ["urn:ioos:sensor:axiom:20363", "urn:ioos:sensor:test:b", "urn:ioos:sensor:test:c"]
#: New thresholds a data manager sets after the values were first flagged.
NEW_TESTS = {
    **HUMBOLDT_TESTS,
    "gross_range": {"fail_span": [0.5, 1800.0], "suspect_span": [40.0, 1200.0]},
    "spike": {"suspect_threshold": 150.0, "fail_threshold": 500.0},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1 (STACK.md check 8)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "spawn",
    }
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    address = f"tcp://127.0.0.1:{port}"
    procs += [
        subprocess.Popen(
            [
                str(bin_dir / "dask"),
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"w{i}",
                "--local-directory",
                str(tmp_path / f"w{i}"),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    try:
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


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
    dask_cluster: str, tmp_path: Path
) -> None:
    from distributed import Client, get_task_stream

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
    with Client(dask_cluster, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2
        with get_task_stream(client) as stream:
            result = reprocess(remote, new, client=client)
        workers = {t["worker"] for t in stream.data if "reprocess_series" in str(t["key"])}
    assert result.series == 3
    assert result.changed > 0
    assert len(workers) == 2  # both worker processes did part of the work

    local = build(Settings(root=str(tmp_path / "local")), rows)
    local_result = reprocess(local, new, workers=2)  # default: a local cluster (spawn)
    assert local_result.changed == result.changed

    got_remote, got_local = flags_of(remote), flags_of(local)
    for column in FLAGS:
        assert got_remote[column].equals(got_local[column]), column
        diff = pc.sum(pc.not_equal(got_remote[column], expected[column])).as_py()
        assert diff == 0, f"{column}: {diff} values differ from a whole-series run"
    # Reprocessing again finds nothing to change.
    with Client(dask_cluster, timeout=60) as client:
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
