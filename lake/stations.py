"""Station ids (IOOS URNs) and station metadata (name, position, WMO id, provider, platform)
as a small Delta table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lake.delta import ensure_table, open_table, with_commit_retry
from lake.storage import Storage


def station_urn(authority: str, code: str) -> str:
    """The IOOS URN of a station: `urn:ioos:station:<authority>:<code>` ('wmo', '44013' ->
    'urn:ioos:station:wmo:44013').

    The one place the form is written, so every source names a station the same way and the
    station_id of a row can be matched across sources. Callers normalize the code the way
    their provider needs (NDBC lower-cases it); this does not, so existing ids keep their case.
    Raises ValueError for an empty authority or code, which would give an id that names no
    station.
    """
    if not authority or not code:
        raise ValueError(
            f"a station URN needs an authority and a code, got {authority!r}, {code!r}"
        )
    return f"urn:ioos:station:{authority}:{code}"


STATION_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string(), nullable=False),
        pa.field("station_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("lon", pa.float64()),
        pa.field("lat", pa.float64()),
        pa.field("wmo_id", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("attributes", pa.string()),  # JSON: what the source says about the station
        pa.field("updated_at", pa.timestamp("us"), nullable=False),
    ]
)


class StationTable:
    """`<root>/tables/stations`: one row per (dataset_id, station_id), newest wins."""

    def __init__(self, storage: Storage) -> None:
        self.url = storage.url("tables", "stations")
        self.options = storage.delta_options()

    def upsert(self, dataset_id: str, stations: Iterable[Mapping[str, Any]]) -> int:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            {
                "dataset_id": dataset_id,
                "station_id": s["station_id"],
                "name": s.get("name"),
                "lon": s.get("lon"),
                "lat": s.get("lat"),
                "wmo_id": s.get("wmo_id"),
                "provider": s.get("provider"),
                "platform": s.get("platform"),
                "attributes": json.dumps(s.get("attributes") or {}, default=str),
                "updated_at": now,
            }
            for s in stations
        ]
        if not rows:
            return 0
        batch = pa.Table.from_pylist(rows, schema=STATION_SCHEMA)
        changed = " OR ".join(
            f"(s.{c} IS DISTINCT FROM t.{c})"
            for c in ("name", "lon", "lat", "wmo_id", "provider", "platform", "attributes")
        )

        def merge() -> int:
            table = ensure_table(self.url, STATION_SCHEMA, self.options, name="stations")
            metrics = (
                table.merge(
                    batch,
                    "t.dataset_id = s.dataset_id AND t.station_id = s.station_id",
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_update_all(predicate=changed)
                .when_not_matched_insert_all()
                .execute()
            )
            return int(metrics.get("num_target_rows_inserted", 0))

        return with_commit_retry(merge, f"update stations at {self.url}")

    def read(self) -> pa.Table:
        table = open_table(self.url, self.options)
        if table is None:
            return STATION_SCHEMA.empty_table()
        return table.to_pyarrow_dataset().to_table()
