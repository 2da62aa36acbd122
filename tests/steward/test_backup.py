"""Backups of a real lake to a folder and to a second bucket on moto's S3 server: incremental,
checked by checksum; `verify` names a deleted and a corrupted object; a restored lake
answers a fixed list of queries exactly as the lake did before the damage."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coastlake.harvest import run_harvest
from lake.grids import clear_open_cache, open_grid
from lake.reader import Lake
from lake.registry import load_registry
from lake.settings import Settings
from lake.storage import Storage
from steward.backup import Tree, backup, restore, verify
from tests.steward.conftest import harvested_lake, write_registry
from tests.support.s3 import MotoServer

STREAMS = ("ndbc-44029-ocean", "ndbc-44013-stdmet", "erddap-mw-sst-1day")
QUERIES = (
    # Sums rounded: DuckDB adds in the order its threads finish.
    "select dataset_id, variable, count(*) n, round(avg(value), 9) mean from observations_all "
    "group by all order by all",
    "select time, value, qc_agg from observations where station_id = "
    "'urn:ioos:station:wmo:44029' and variable = 'sea_water_temperature' order by time",
    "select station_id, name, lon, lat from stations order by all",
    "select * exclude (ingested_at) from observations_all where dataset_id = "
    "'ndbc-44013-stdmet' and time between '2022-05-01' and '2022-05-02' order by all",
)


def answers(storage: Storage) -> list[Any]:
    lk = Lake(storage)
    try:
        found: list[Any] = [lk.sql(q).to_pylist() for q in QUERIES]
    finally:
        lk.close()
    clear_open_cache()
    sst = open_grid(storage, "erddap-mw-sst-1day")["sst"]
    found.append(float(np.nansum(sst.values)))
    return found


@pytest.mark.s3
def test_backup_verify_restore(tmp_path: Path, moto: MotoServer) -> None:
    bucket = f"backup-{uuid.uuid4().hex[:8]}"
    moto.create_bucket(bucket)
    aws: dict[str, Any] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.endpoint,
    }
    storage, _ = harvested_lake(tmp_path, write_registry(tmp_path, STREAMS))
    lake = Storage.from_settings(Settings(root=storage.root, **aws))
    before = answers(lake)
    folder, bucket_url = str(tmp_path / "copy"), f"s3://{bucket}/lake-copy"

    first = backup(lake, folder)
    to_bucket = backup(lake, bucket_url)
    assert first.copied and sorted(first.copied) == sorted(to_bucket.copied)
    assert backup(lake, folder).copied == []  # nothing changed: nothing copied

    # Damage: a data file of the observation table disappears, a raw response rots.
    keys = Tree(lake).listing()
    data_file = next(
        k for k in keys if k.startswith("tables/observations/") and k.endswith(".parquet")
    )
    raw_file = next(k for k in keys if k.startswith("raw/") and not k.endswith(".json"))
    Path(lake.url(data_file)).unlink()
    Path(lake.url(raw_file)).write_bytes(b"bit rot")

    for report in (verify(lake), verify(lake, bucket_url), verify(lake, folder)):
        assert report.missing == [data_file]
        assert report.corrupted == [raw_file]
        assert not report.ok
    assert verify(lake, bucket_url).backup_missing == []  # the copies themselves are whole

    repaired = restore(lake, bucket_url)
    assert sorted(repaired.copied) == sorted([data_file, raw_file])
    assert verify(lake, folder).ok
    assert answers(lake) == before

    # A new lake built from the folder copy alone answers the same.
    fresh = Storage.from_settings(Settings(root=str(tmp_path / "restored"), **aws))
    assert len(restore(fresh, folder).copied) == len(first.copied)
    assert answers(fresh) == before


def test_backup_is_incremental_and_mirrors_deletions(tmp_path: Path) -> None:
    storage, _ = harvested_lake(tmp_path, write_registry(tmp_path, ("ndbc-44029-ocean",)))
    target = str(tmp_path / "copy")
    backup(storage, target)
    extra = storage.url("raw", "ndbc-44029-ocean", "zz", "note")
    storage.write_bytes(extra, b"one more object")
    again = backup(storage, target)
    assert again.copied == ["raw/ndbc-44029-ocean/zz/note"]
    assert Path(target, "raw/ndbc-44029-ocean/zz/note").read_bytes() == b"one more object"
    storage.delete(extra)
    third = backup(storage, target)
    assert third.copied == [] and third.deleted == ["raw/ndbc-44029-ocean/zz/note"]
    assert not Path(target, "raw/ndbc-44029-ocean/zz/note").exists()


def test_a_target_without_backup_is_named(tmp_path: Path) -> None:
    lake = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    with pytest.raises(Exception, match="no coastlake backup"):
        verify(lake, str(tmp_path / "nothing"))
    with pytest.raises(Exception, match="no coastlake backup"):
        restore(lake, str(tmp_path / "nothing"))


@pytest.mark.s3
def test_a_lake_on_s3_backs_up_to_a_folder_and_is_repaired(
    tmp_path: Path, s3_settings: Settings
) -> None:
    """The primary on a bucket (ETags as stamps), the copy in a folder."""
    registry_path = write_registry(tmp_path, ("ndbc-44029-ocean",))
    settings = s3_settings.model_copy(update={"registry": str(registry_path)})
    lake = Storage.from_settings(settings)
    registry = load_registry(registry_path)
    run_harvest(lake, registry, registry.streams, progress=False)
    query = "select * exclude (ingested_at) from observations_all order by all"
    lk = Lake(lake)
    before = lk.sql(query)
    folder = str(tmp_path / "copy")
    first = backup(lake, folder)
    assert first.copied and backup(lake, folder).copied == []
    data_file = next(
        k for k in first.copied if k.startswith("tables/observations/") and k.endswith(".parquet")
    )
    lake.write_bytes(lake.url(data_file), b"not parquet")
    assert verify(lake, folder).corrupted == [data_file]
    assert restore(lake, folder).copied == [data_file]
    assert verify(lake).ok
    assert lk.sql(query).equals(before)
    lk.close()


@pytest.mark.s3
def test_a_backup_bucket_on_another_store_uses_its_own_credentials(
    tmp_path: Path, moto: MotoServer
) -> None:
    """The lake has no S3 settings at all; only LAKE_BACKUP_* name the target's store."""
    bucket = f"offsite-{uuid.uuid4().hex[:8]}"
    moto.create_bucket(bucket)
    storage, _ = harvested_lake(tmp_path, write_registry(tmp_path, ("ndbc-44029-ocean",)))
    lake = Storage.from_settings(
        Settings(
            root=storage.root,
            backup_endpoint_url=moto.endpoint,
            backup_access_key_id="testing",
            backup_secret_access_key="testing",
        )
    )
    assert lake.settings.aws_endpoint_url is None
    done = backup(lake, f"s3://{bucket}/lake")
    assert done.copied and verify(lake, f"s3://{bucket}/lake").ok


def test_verify_without_a_backup_checks_the_logs_and_content_hashes(tmp_path: Path) -> None:
    """A lake never backed up: the Delta log's files and sizes, and the raw responses'
    names (their SHA-256), are enough to name a missing and a corrupted object."""
    storage, _ = harvested_lake(tmp_path, write_registry(tmp_path, ("ndbc-44029-ocean",)))
    clean = verify(storage)
    assert clean.ok and clean.checked > 0
    keys = Tree(storage).listing()
    data_file = next(
        k for k in keys if k.startswith("tables/observations/") and k.endswith(".parquet")
    )
    raw_file = next(k for k in keys if k.startswith("raw/") and not k.endswith(".json"))
    Path(storage.url(data_file)).unlink()
    Path(storage.url(raw_file)).write_bytes(b"bit rot")
    report = verify(storage)
    assert (report.missing, report.corrupted) == ([data_file], [raw_file])
