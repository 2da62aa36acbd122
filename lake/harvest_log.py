"""The harvest log: one row per attempt to fetch a stream.

Records the last attempt, the last success, rows added and why a harvest failed, and keeps
the validators (ETag, Last-Modified) that make the next request conditional.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from lake.delta import ensure_table, open_table, with_commit_retry
from lake.storage import Storage

HARVEST_SCHEMA = pa.schema(
    [
        pa.field("stream_id", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("url", pa.string()),
        pa.field("started_at", pa.timestamp("us"), nullable=False),
        pa.field("finished_at", pa.timestamp("us"), nullable=False),
        # ok | unchanged | syntax_failed | fetch_failed | failed
        pa.field("status", pa.string(), nullable=False),
        pa.field("rows_in", pa.int64()),
        pa.field("rows_added", pa.int64()),
        pa.field("rows_updated", pa.int64()),
        pa.field("raw_id", pa.string()),
        pa.field("raw_file", pa.string()),
        pa.field("etag", pa.string()),
        pa.field("last_modified", pa.string()),
        pa.field("error", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class HarvestRecord:
    stream_id: str
    label: str
    url: str
    started_at: datetime
    finished_at: datetime
    status: str
    rows_in: int = 0
    rows_added: int = 0
    rows_updated: int = 0
    raw_id: str | None = None
    raw_file: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request being harvested, started now; `done()` gives its record when it ends.

    Every harvest path builds its records through this, so each record has the same
    identity fields and a finish time taken when the outcome is known.
    """

    stream_id: str
    label: str
    url: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def done(self, status: str, **outcome: Any) -> HarvestRecord:
        """The record of this attempt ending with `status` (ok, unchanged, syntax_failed,
        fetch_failed, failed) and the given counts, validators, raw ids or error."""
        return HarvestRecord(
            stream_id=self.stream_id,
            label=self.label,
            url=self.url,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            status=status,
            **outcome,
        )


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


class HarvestLog:
    """`<root>/tables/harvests`, an append-only Delta table."""

    def __init__(self, storage: Storage) -> None:
        self.url = storage.url("tables", "harvests")
        self.options = storage.delta_options()

    def add(self, records: list[HarvestRecord]) -> None:
        if not records:
            return
        rows = []
        for r in records:
            row = asdict(r)
            row["started_at"] = _naive(r.started_at)
            row["finished_at"] = _naive(r.finished_at)
            rows.append(row)
        batch = pa.Table.from_pylist(rows, schema=HARVEST_SCHEMA)
        ensure_table(self.url, HARVEST_SCHEMA, self.options, name="harvests")
        with_commit_retry(
            lambda: write_deltalake(self.url, batch, mode="append", storage_options=self.options),
            f"record harvest at {self.url}",
        )

    def read(self) -> pa.Table:
        table = open_table(self.url, self.options)
        if table is None:
            return HARVEST_SCHEMA.empty_table()
        return table.to_pyarrow_dataset().to_table()

    def latest(self, stream_id: str | None = None) -> list[HarvestRecord]:
        """The newest record per (stream, url)."""
        rows = self.read().sort_by([("started_at", "descending")]).to_pylist()
        seen: set[tuple[str, str]] = set()
        out = []
        names = {f.name for f in fields(HarvestRecord)}
        for row in rows:
            key = (row["stream_id"], row["url"])
            if key in seen or (stream_id and row["stream_id"] != stream_id):
                continue
            seen.add(key)
            out.append(HarvestRecord(**{k: v for k, v in row.items() if k in names}))
        return out
