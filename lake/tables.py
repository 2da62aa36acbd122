"""The observation table: long rows under a Delta Lake log, partitioned by variable and year.

Writes are merges on (dataset_id, station_id, variable, z, time): re-ingesting a response
changes nothing, and a newer ingest wins where values differ. A commit is atomic, so a
writer killed at any point leaves the table as it was before that batch or after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import DeltaTable, WriterProperties, write_deltalake

from lake.delta import ensure_table, merge_metrics, open_table, with_commit_retry
from lake.errors import StorageError
from lake.storage import Storage

log = logging.getLogger(__name__)

#: One flag column per QARTOD test, stored beside every value (R10).
QC_TESTS: tuple[str, ...] = (
    "syntax",
    "timing_gap",
    "location",
    "gross_range",
    "climatology",
    "spike",
    "rate_of_change",
    "flat_line",
    "neighbor",
)
QC_COLUMNS: tuple[str, ...] = tuple(f"qc_{t}" for t in QC_TESTS)
KEY_COLUMNS: tuple[str, ...] = ("dataset_id", "station_id", "variable", "z", "time")
PARTITION_COLUMNS: list[str] = ["variable", "year"]

_UTC = {"timezone": "UTC", "comment": "UTC, stored without a zone for fast aggregates"}
OBSERVATION_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string(), nullable=False),
        pa.field("station_id", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us"), nullable=False, metadata=_UTC),
        pa.field("z", pa.float64(), nullable=False),
        pa.field("lon", pa.float64()),
        pa.field("lat", pa.float64()),
        pa.field("variable", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("units", pa.string()),
        pa.field("qc_agg", pa.int8()),
        *[pa.field(c, pa.int8()) for c in QC_COLUMNS],
        pa.field("provider_flag", pa.string()),
        pa.field("ingested_at", pa.timestamp("us"), nullable=False, metadata=_UTC),
        pa.field("raw_id", pa.string()),
        pa.field("year", pa.int32(), nullable=False),
    ]
)

# Row groups of ~128 k rows: measured (DESIGN.md) as a good middle for one-station reads
# and regional scans.
WRITER_PROPERTIES = WriterProperties(
    max_row_group_size=131_072, compression="ZSTD", compression_level=3
)
TARGET_FILE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class WriteResult:
    rows_in: int
    inserted: int
    updated: int
    version: int | None

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


def conform(batch: pa.Table) -> pa.Table:
    """Cast a batch to the table schema: add missing optional columns, times to naive UTC.

    Raises StorageError naming the column when a required column is missing or null. A batch
    already in the table schema is returned as it is, so conforming twice costs nothing.
    """
    if batch.schema.equals(OBSERVATION_SCHEMA):
        return batch
    now = datetime.now(UTC).replace(tzinfo=None)
    columns = []
    n = batch.num_rows
    for field in OBSERVATION_SCHEMA:
        if field.name == "year":
            continue
        if field.name in batch.column_names:
            col = batch.column(field.name)
            if pa.types.is_timestamp(col.type) and col.type.tz is not None:
                col = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
            col = col.cast(field.type)
        elif field.name == "ingested_at":
            col = pa.chunked_array(
                [pa.array(np.full(n, np.datetime64(now, "us")), pa.timestamp("us"))]
            )
        elif field.name == "z":
            col = pa.chunked_array([pa.array(np.zeros(n), pa.float64())])
        elif not field.nullable:
            raise StorageError(f"observation batch lacks the required column {field.name!r}")
        else:
            col = pa.chunked_array([pa.nulls(n, field.type)])
        if not field.nullable and col.null_count:
            raise StorageError(f"observation batch has {col.null_count} empty {field.name!r}")
        columns.append(col)
    year = pc.cast(pc.year(columns[2]), pa.int32())
    columns.append(year)
    return pa.Table.from_arrays(columns, schema=OBSERVATION_SCHEMA)


def dedupe(batch: pa.Table) -> pa.Table:
    """Keep the last row of each key within a batch, so a merge sees each key once."""
    if batch.num_rows == 0:
        return batch
    indexed = batch.append_column("__row", pa.array(range(batch.num_rows), pa.int64()))
    last = indexed.group_by(list(KEY_COLUMNS), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == batch.num_rows:
        return batch
    keep = last.column("__row_max")
    return batch.take(pc.take(keep, pc.sort_indices(keep)))


def _sql_list(values: list[object]) -> str:
    def lit(v: object) -> str:
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"

    return ", ".join(lit(v) for v in values)


class ObservationTable:
    """The lake's long observation table at `<root>/tables/observations`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.url = storage.url("tables", "observations")
        self.options = storage.delta_options()

    def exists(self) -> bool:
        return open_table(self.url, self.options) is not None

    def create(self) -> DeltaTable:
        return ensure_table(
            self.url, OBSERVATION_SCHEMA, self.options, PARTITION_COLUMNS, name="observations"
        )

    def delta(self) -> DeltaTable:
        table = open_table(self.url, self.options)
        if table is None:
            return self.create()
        return table

    def write(self, batch: pa.Table, *, unique_keys: bool = False) -> WriteResult:
        """Merge a batch in: new keys are inserted, changed values replace older ones.

        Merge, not append: re-ingesting a response must change nothing. `unique_keys` says
        the caller already kept one row per key (the harvest job does, before QC).
        """
        rows = conform(batch)
        if not unique_keys:
            rows = dedupe(rows)
        if rows.num_rows == 0:
            return WriteResult(0, 0, 0, None)
        variables = pc.unique(rows.column("variable")).to_pylist()
        years = pc.unique(rows.column("year")).to_pylist()
        predicate = (
            f"t.variable IN ({_sql_list(variables)}) AND t.year IN ({_sql_list(years)})"
            " AND t.dataset_id = s.dataset_id AND t.station_id = s.station_id"
            " AND t.variable = s.variable AND t.year = s.year AND t.z = s.z AND t.time = s.time"
        )
        changed = " OR ".join(
            f"(s.{c} IS DISTINCT FROM t.{c})"
            for c in ("value", "units", "provider_flag", "qc_agg", *QC_COLUMNS, "lon", "lat")
        )

        def merge() -> tuple[int, int, int]:
            table = self.delta()
            metrics = (
                table.merge(
                    rows,
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    writer_properties=WRITER_PROPERTIES,
                )
                .when_matched_update_all(predicate=changed)
                .when_not_matched_insert_all()
                .execute()
            )
            inserted, updated = merge_metrics(metrics)
            return inserted, updated, table.version()

        inserted, updated, version = with_commit_retry(merge, f"write to {self.url}")
        log.debug("merged %d rows: %d new, %d changed", rows.num_rows, inserted, updated)
        return WriteResult(rows.num_rows, inserted, updated, version)

    def append(self, batch: pa.Table) -> WriteResult:
        """Append without checking keys: for bulk loads known to be new (benchmarks, backfill
        into an empty table). Still one atomic commit."""
        rows = conform(batch)
        self.create()
        with_commit_retry(
            lambda: write_deltalake(
                self.url,
                rows,
                mode="append",
                partition_by=PARTITION_COLUMNS,
                storage_options=self.options,
                writer_properties=WRITER_PROPERTIES,
                target_file_size=TARGET_FILE_BYTES,
            ),
            f"append to {self.url}",
        )
        return WriteResult(rows.num_rows, rows.num_rows, 0, self.delta().version())

    def dataset(self) -> pds.Dataset:
        """A pyarrow dataset over the current version (empty table if none exists yet)."""
        table = open_table(self.url, self.options)
        if table is None:
            return pds.dataset(OBSERVATION_SCHEMA.empty_table())
        return table.to_pyarrow_dataset()

    def compact(self, min_files: int = 2) -> int:
        """Rewrite each partition holding at least `min_files` files as one sorted set.

        Sorted by station and time so one station's rows sit together and row-group
        statistics skip the rest. Each partition is replaced in one commit (replaceWhere),
        so readers see the old files or the new ones. Returns the partitions rewritten.
        """
        table = self.delta()
        counts: dict[tuple[str, int], int] = {}
        for add in pa.table(table.get_add_actions(flatten=True)).to_pylist():
            key = (add["partition.variable"], int(add["partition.year"]))
            counts[key] = counts.get(key, 0) + 1
        rewritten = 0
        for (variable, year), files in sorted(counts.items()):
            if files < min_files:
                continue
            predicate = f"variable = {_sql_list([variable])} AND year = {year}"

            def rewrite(predicate: str = predicate, variable: str = variable, year: int = year):
                current = self.delta()
                part = current.to_pyarrow_dataset().to_table(
                    filter=(pc.field("variable") == variable) & (pc.field("year") == year)
                )
                part = part.sort_by([("station_id", "ascending"), ("time", "ascending")])
                write_deltalake(
                    current,
                    part.cast(OBSERVATION_SCHEMA),
                    mode="overwrite",
                    predicate=predicate,
                    partition_by=PARTITION_COLUMNS,
                    writer_properties=WRITER_PROPERTIES,
                    target_file_size=TARGET_FILE_BYTES,
                )

            with_commit_retry(rewrite, f"compact {variable} {year}")
            log.info("compacted %s %d: %d files into sorted files", variable, year, files)
            rewritten += 1
        return rewritten

    def vacuum(self, retention: timedelta = timedelta(days=7)) -> list[str]:
        """Delete files no longer in the table and older than `retention`. Returns them."""
        table = self.delta()
        hours = int(retention.total_seconds() // 3600)
        return list(
            table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        )
