"""The NCEI archive and the catalog build on a real Dask cluster against moto's S3 server:
one task per stream-month and per dataset on the two worker processes, the same packages
and catalog files as the in-process run, and a retried archive task sends nothing twice."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from coastlake.harvest import run_harvest
from lake.reader import Lake
from lake.registry import Registry, load_registry
from lake.settings import Settings
from lake.storage import Storage
from stac.build import API_DIR, CATALOG_DIR, COLLECTIONS_FILE, ITEMS_FILE, build_catalog
from steward.ncei import (
    PACKAGES,
    archive_months,
    archive_stream_month,
    archived_streams,
    month_window,
    months_due,
    submissions,
)
from tests.steward.conftest import write_registry
from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.s3]

STREAMS = ("ndbc-44013-stdmet", "ndbc-44029-ocean")
#: Every month of the recorded responses has ended by then.
NOW = datetime(2030, 1, 1)


@pytest.fixture(scope="module")
def harvested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry]:
    """Two archived streams harvested once into a folder; each test gets copies."""
    folder = tmp_path_factory.mktemp("archive")
    path = write_registry(folder, STREAMS, ndbc_44029_ocean={"archive": {"ncei": True}})
    registry = load_registry(path)
    storage = Storage.from_settings(Settings(root=str(folder / "lake"), registry=str(path)))
    run_harvest(storage, registry, registry.streams, progress=False)
    return folder / "lake", registry


@pytest.fixture
def lakes(
    harvested: tuple[Path, Registry], s3_settings: Settings, tmp_path: Path
) -> Iterator[tuple[Lake, Lake, Registry]]:
    """The harvested lake copied into a bucket and into a folder of the test's own."""
    source, registry = harvested
    remote = Storage.from_settings(s3_settings)
    remote.fs.put(f"{source}/", remote.root.removeprefix("s3://") + "/", recursive=True)
    shutil.copytree(source, tmp_path / "local")
    found = [Lake(remote), Lake(Storage.from_settings(Settings(root=str(tmp_path / "local"))))]
    yield found[0], found[1], registry
    for lk in found:
        lk.close()


def package_files(storage: Storage) -> dict[str, int]:
    """Package files (relative name -> rows) of every submission record."""
    names: dict[str, int] = {}
    for url in storage.list(storage.url("archive", "ncei", "submissions")):
        stream_id = url.rstrip("/").rsplit("/", 1)[-1]
        for month_url in storage.list(url):
            month = month_url.rstrip("/").rsplit("/", 1)[-1]
            for sub in submissions(storage, stream_id, month):
                names |= {f"{stream_id}/{month}/v{sub.version}/{f.name}": f.rows for f in sub.files}
    return names


def catalog_files(storage: Storage) -> dict[str, object]:
    """The static catalog's JSON files and the API's collections, less the build time."""
    prefix = storage.url(CATALOG_DIR)
    found: dict[str, object] = {}
    for path in storage.fs.find(prefix.removeprefix("s3://")):
        url = ("s3://" + path) if storage.is_s3 else path
        found[url[len(prefix) :]] = json.loads(storage.read_bytes(url))
    api = json.loads(storage.read_bytes(storage.url(API_DIR, COLLECTIONS_FILE)))
    api.pop("built_at")
    found["api"] = api
    found["items"] = storage.read_bytes(storage.url(API_DIR, ITEMS_FILE))
    return found


def test_archive_on_the_cluster_equals_the_local_one_and_is_sent_once(
    dask_cluster: DaskCluster, lakes: tuple[Lake, Lake, Registry]
) -> None:
    remote, local, registry = lakes
    months = months_due(remote, registry, NOW)
    assert months == months_due(local, registry, NOW)
    months = months[-2:]  # two months of two streams: enough tasks for both workers
    assert len(months) == 2

    with dask_cluster.client() as client:
        got = archive_months(remote, registry, months, now=NOW, client=client)
    want = archive_months(local, registry, months, now=NOW)

    assert [(o.stream_id, o.month, o.action) for o in got] == [
        (o.stream_id, o.month, o.action) for o in want
    ]
    assert {o.action for o in got} >= {"sent"}
    assert package_files(remote.storage) == package_files(local.storage)
    assert package_files(remote.storage)  # packages were made
    ran = dask_cluster.workers_that_ran("archive_stream_month")
    assert ran == set(dask_cluster.workers)

    # Run again: every month unchanged, no second version anywhere.
    with dask_cluster.client() as client:
        again = archive_months(remote, registry, months, now=NOW, client=client)
    assert {o.action for o in again} <= {"unchanged", "empty"}
    assert all(o.submission is None or o.submission.version == 1 for o in again)


def test_a_retried_archive_task_reports_its_first_attempt(
    lakes: tuple[Lake, Lake, Registry],
) -> None:
    """What the scheduler does when a worker dies after writing: the same task again."""
    remote, _, registry = lakes
    stream = archived_streams(registry)[0]
    month = months_due(remote, registry, NOW)[0]
    windows = {month: month_window(month, NOW)}
    target = remote.storage.url(*PACKAGES)
    first = archive_stream_month((stream, month), remote.storage, target, windows, "run-1")
    retry = archive_stream_month((stream, month), remote.storage, target, windows, "run-1")
    assert first.action == retry.action == "sent"
    assert first.submission is not None and retry.submission is not None
    assert retry.submission.version == first.submission.version == 1
    assert [s.version for s in submissions(remote.storage, stream.id, month)] == [1]
    # A later run is told the month is unchanged.
    later = archive_stream_month((stream, month), remote.storage, target, windows, "run-2")
    assert later.action == "unchanged"


def test_catalog_built_on_the_cluster_equals_the_local_build(
    dask_cluster: DaskCluster, lakes: tuple[Lake, Lake, Registry]
) -> None:
    remote, _, registry = lakes
    with dask_cluster.client() as client:
        on_cluster = build_catalog(remote.storage, registry, client=client)
    files = catalog_files(remote.storage)
    here = build_catalog(remote.storage, registry)
    assert (on_cluster.collections, on_cluster.items, on_cluster.files) == (
        here.collections,
        here.items,
        here.files,
    )
    assert on_cluster.items > 0
    assert catalog_files(remote.storage) == files
    ran = {t.worker for t in dask_cluster.task_log() if t.name == "dataset_entries"}
    assert len([t for t in dask_cluster.task_log() if t.name == "dataset_entries"]) == len(STREAMS)
    assert ran and ran <= set(dask_cluster.workers)
