"""What `lake status` shows: per stream its category, QC path, rows, time span, last harvest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lake.harvest_log import HarvestLog
from lake.registry import Registry

if TYPE_CHECKING:
    from lake.reader import Lake


@dataclass(frozen=True, slots=True)
class StreamStatus:
    stream_id: str
    category: str
    qc_path: str
    plan: str
    stations: int
    rows: int
    first_time: datetime | None
    last_time: datetime | None
    last_ingest: datetime | None
    last_attempt: datetime | None
    last_status: str | None
    last_error: str | None


def stream_status(lk: Lake, registry: Registry) -> list[StreamStatus]:
    """Status of every stream in the registry, from the table and the harvest log."""
    counts = {
        r["dataset_id"]: r
        for r in lk.sql(
            "SELECT dataset_id, count(*) AS rows, count(DISTINCT station_id) AS stations, "
            "min(time) AS first_time, max(time) AS last_time, max(ingested_at) AS last_ingest "
            "FROM observations_all GROUP BY dataset_id"
        ).to_pylist()
    }
    attempts = {}
    for record in sorted(HarvestLog(lk.storage).latest(), key=lambda r: r.started_at):
        attempts[record.stream_id] = record
    out = []
    for stream in registry.streams:
        c = counts.get(stream.id, {})
        a = attempts.get(stream.id)
        plan = stream.data_stream_plan or (
            "required, missing" if stream.category.needs_stream_plan else "exempt"
        )
        out.append(
            StreamStatus(
                stream_id=stream.id,
                category=stream.category.value,
                qc_path=stream.category.qc_path,
                plan=plan,
                stations=int(c.get("stations", 0)),
                rows=int(c.get("rows", 0)),
                first_time=c.get("first_time"),
                last_time=c.get("last_time"),
                last_ingest=c.get("last_ingest"),
                last_attempt=a.started_at if a else None,
                last_status=a.status if a else None,
                last_error=a.error if a else None,
            )
        )
    return out
