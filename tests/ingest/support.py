"""Helpers for the ingest tests: streams built like registry entries, a harvest over real
HTTP, and reading back what landed in the lake."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from coastlake.harvest import HarvestOptions, harvest_stream
from ingest.fetch import FetchPolicy
from lake.harvest_log import HarvestRecord
from lake.reader import Lake
from lake.registry import Stream
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.conftest import DATA, SAMPLE_DATA

INGEST_DATA = DATA / "ingest"
NDBC = SAMPLE_DATA / "www.ndbc.noaa.gov"
COOPS = SAMPLE_DATA / "api.tidesandcurrents.noaa.gov"
ERDDAP = SAMPLE_DATA / "coastwatch.pfeg.noaa.gov" / "erddap"
NERRS = SAMPLE_DATA / "cdmo.baruch.sc.edu" / "exports"

#: Fast failure for fault tests: short timeout, one retry, tiny backoff.
QUICK = FetchPolicy(timeout_s=0.5, retries=1, backoff_s=0.01)


def make_stream(stream_id: str, source: dict[str, Any], **extra: Any) -> Stream:
    """A registry stream as a data manager would write it."""
    return Stream.model_validate(
        {
            "id": stream_id,
            "title": stream_id,
            "provider": {"name": "test provider"},
            "category": "federal",
            "source": source,
            **extra,
        }
    )


def harvest(
    storage: Storage,
    stream: Stream,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    policy: FetchPolicy = QUICK,
    conditional: bool = True,
) -> list[HarvestRecord]:
    ObservationTable(storage).create()
    options = HarvestOptions(since=since, until=until, policy=policy, conditional=conditional)
    return harvest_stream(storage, stream, options, qc_step=None)


def data_records(records: list[HarvestRecord]) -> list[HarvestRecord]:
    """The records of data requests (not the metadata ones)."""
    return [r for r in records if "metadata" not in r.label and r.label != "info"]


def rows(storage: Storage, where: str = "true") -> list[dict[str, Any]]:
    """Observation rows (all, QC-masked or not) matching a SQL condition, sorted."""
    table: pa.Table = Lake(storage).sql(
        "select dataset_id, station_id, time, z, lon, lat, variable, value, units, "
        f"provider_flag, raw_id from observations_all where {where} "
        "order by station_id, variable, time"
    )
    return table.to_pylist()


def one(storage: Storage, where: str) -> dict[str, Any]:
    found = rows(storage, where)
    assert len(found) == 1, (where, found)
    return found[0]


def serve_file(server: Any, url_path: str, file: Path) -> None:
    server.routes[url_path] = file
