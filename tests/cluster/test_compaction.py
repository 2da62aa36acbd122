"""`lake compact` on a real Dask cluster (`dask scheduler` + two `dask worker` processes)
against moto's S3 server: the same table as the in-process compaction, the partitions
rewritten by both workers, and a worker killed mid-job costs nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lake.compaction import compact
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.cluster.support import WRITE_TIME, duplicate_keys, kill_when_held, table_rows
from tests.lake.tables_support import real_rows
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.s3]

LAKE = str(Path(sys.executable).parent / "lake")


def trickled_lake(storage: Storage, writes: int = 6) -> int:
    """The real 44013 rows written in `writes` small batches, newest first, as a real-time
    trickle leaves them: small files in every variable-month partition. Returns the rows."""
    rows = real_rows()
    table = ObservationTable(storage)
    size = -(-rows.num_rows // writes)
    for start in reversed(range(0, rows.num_rows, size)):
        table.write(rows.slice(start, size))
    return rows.num_rows


def test_compaction_on_the_cluster_equals_the_local_one(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    remote = Storage.from_settings(s3_settings)
    local = Storage.from_settings(Settings(root=str(tmp_path / "local")))
    trickled_lake(remote)
    trickled_lake(local)
    before = table_rows(remote)
    plan = ObservationTable(remote).compaction_plan()
    assert len(plan) >= 4  # enough partitions for both workers
    files_before = len(ObservationTable(remote).delta().file_uris())

    # As a data manager runs it: `lake compact --scheduler`, the bucket's keys in the
    # command's environment only (the workers have none).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=str(s3_settings.aws_endpoint_url),
    )
    command = [LAKE, "compact", "--scheduler", dask_cluster.address, "--root", remote.root]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())  # as wrapped for a terminal
    assert f"sending {len(plan)} partitions" in said
    assert f"the Dask scheduler at {dask_cluster.address}" in said
    counted = re.search(r"compacted (\d+) partitions", said)
    assert counted is not None, said
    n = int(counted.group(1))
    assert n == len(plan)
    assert compact(local) == n  # in this process, one partition at a time

    assert len(ObservationTable(remote).delta().file_uris()) < files_before
    assert ObservationTable(remote).compaction_plan() == []
    assert table_rows(remote).equals(before)  # compaction changes files, not rows
    assert table_rows(remote, WRITE_TIME).equals(table_rows(local, WRITE_TIME))
    assert duplicate_keys(remote) == 0
    # The scheduler's log: every partition a task of ours, run on both worker processes.
    runs = [t for t in dask_cluster.task_log() if t.name == "compact_partition"]
    assert len([t for t in runs if t.status == "OK"]) == n
    assert dask_cluster.workers_that_ran("compact_partition") == set(dask_cluster.workers)


def test_a_worker_killed_mid_compaction_loses_and_duplicates_nothing(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    """One worker is held right after it committed a partition (before the scheduler heard
    of it) and killed there: the scheduler runs that partition again on the other worker,
    which rewrites the already-compacted rows; every key stays in the table once."""
    remote = Storage.from_settings(s3_settings)
    rows = trickled_lake(remote)
    expected = table_rows(remote)
    plan = ObservationTable(remote).compaction_plan()
    n, held_key, survivor = kill_when_held(
        dask_cluster,
        "compact_partition",
        tmp_path / "held",
        lambda client: compact(remote, client=client),
    )
    assert n == len(plan)

    log = dask_cluster.task_log()
    # The held partition was finished by the survivor; no task of the job ended on the victim.
    assert any(t.key == held_key and t.worker == survivor and t.status == "OK" for t in log)
    assert dask_cluster.workers_that_ran("compact_partition") == {survivor}
    got = table_rows(remote)
    assert got.num_rows == rows
    assert duplicate_keys(remote) == 0
    assert got.equals(expected)
    assert ObservationTable(remote).compaction_plan() == []
