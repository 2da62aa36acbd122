"""A harvest read on a real Dask cluster (`dask scheduler` + two `dask worker` processes)
into moto's S3 server: the same rows, flags and records as the in-process harvest, the
stations' requests read by both workers, and a worker killed mid-harvest costs nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from coastlake.harvest import HarvestOptions, harvest_streams
from lake.harvest_log import HarvestRecord
from lake.registry import Stream, load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
from tests.cluster.support import WRITE_TIME, duplicate_keys, kill_when_held, table_rows
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.s3]

#: Streams of four source kinds, with several requests (stations, products) each.
STREAMS = (
    "ndbc-44013-stdmet",
    "ndbc-44029-ocean",
    "ndbc-44013-spec",
    "coops-9447130-water-level",
    "erddap-tao-10n95w-iso",
    "nerrs-gndblwq",
)


def streams() -> list[Stream]:
    registry = load_registry(SAMPLE_REGISTRY)
    return [registry.get(s) for s in STREAMS]


def outcome(records: list[HarvestRecord]) -> list[tuple[str, str, str, int, int]]:
    """What each request did, in a stable order."""
    return sorted((r.stream_id, r.url, r.status, r.rows_in, r.rows_added) for r in records)


def local_harvest(tmp_path: Path) -> tuple[pa.Table, list[HarvestRecord]]:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "local")))
    records = harvest_streams(storage, streams())
    return table_rows(storage, WRITE_TIME), records


def test_a_harvest_on_the_cluster_equals_the_local_one(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    remote = Storage.from_settings(s3_settings)
    with dask_cluster.client() as client:
        records = harvest_streams(remote, streams(), dask=client)
    expected, local_records = local_harvest(tmp_path)
    assert outcome(records) == outcome(local_records)
    assert all(r.status in ("ok", "unchanged") for r in records), records
    got = table_rows(remote, WRITE_TIME)
    assert got.num_rows == expected.num_rows > 10_000
    assert got.equals(expected)  # values, positions, every QC flag
    assert duplicate_keys(remote) == 0
    # The scheduler's log: one task per station and stream, on both worker processes.
    runs = [t for t in dask_cluster.task_log() if t.name == "read_unit" and t.status == "OK"]
    assert len(runs) >= len(STREAMS)
    assert dask_cluster.workers_that_ran("read_unit") == set(dask_cluster.workers)

    # Again: every source unchanged (conditional requests), nothing new written.
    with dask_cluster.client() as client:
        again = harvest_streams(remote, streams(), dask=client)
    assert sum(r.rows_added for r in again) == 0
    assert table_rows(remote, WRITE_TIME).equals(expected)


def test_a_worker_killed_mid_harvest_loses_and_duplicates_nothing(
    dask_cluster: DaskCluster, s3_settings: Settings, tmp_path: Path
) -> None:
    """One worker is held after it read a station (before the scheduler heard of it) and
    killed there: the scheduler reads that station again on the other worker, and the
    harvest ends with every key once, as the in-process harvest would have it."""
    remote = Storage.from_settings(s3_settings)
    _, held, survivor = kill_when_held(
        dask_cluster,
        "read_unit",
        tmp_path / "held",
        lambda client: harvest_streams(
            remote, streams(), HarvestOptions(conditional=False), dask=client
        ),
    )
    log = dask_cluster.task_log()
    assert any(t.key == held and t.worker == survivor and t.status == "OK" for t in log)
    # The victim was held after its first station, so every station reported came from
    # the survivor.
    assert dask_cluster.workers_that_ran("read_unit") == {survivor}
    expected, _ = local_harvest(tmp_path)
    assert duplicate_keys(remote) == 0
    assert table_rows(remote, WRITE_TIME).equals(expected)
