"""The observation table: long rows under a Delta Lake log, partitioned by variable, year, month.

Writes are merges on (dataset_id, station_id, variable, z, time): re-ingesting a response
changes nothing, and a newer ingest wins where values differ, unless its source ranks lower
than the stored value's (`source_rank`: the provider's quality-controlled history is never
undone by a later real-time poll). A commit is atomic, so a
writer killed at any point leaves the table as it was before that batch or after it.

A table created before a column existed (a new QC test's flag) gains it, null in the stored
rows, the first time it is opened for writing; Arrow reads show it as null before that.
"""

from __future__ import annotations

import functools
import logging
import statistics
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.fs as pafs
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Field,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import DeltaError

from lake.delta import (
    CYCLE_KEY,
    ensure_table,
    last_cycle,
    merge_metrics,
    open_table,
    with_checkpoints,
    with_commit_retry,
)
from lake.errors import StorageError
from lake.keys import last_of_each, row_keys
from lake.snapshot import FileFilter, select_files
from lake.storage import Storage

log = logging.getLogger(__name__)

#: One flag column per QARTOD test, stored beside every value. The tests themselves are
#: `qc.catalogue.CATALOGUE`; the core imports nothing of qc, so a test there checks the
#: two lists agree.
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
#: The merge's rule for a key already stored: the incoming value replaces it only if its
#: source ranks at least as high (real-time < monthly/verified < yearly, per stream).
RANK_WINS = "coalesce(s.source_rank, 0) >= coalesce(t.source_rank, 0)"
#: Month partitions keep what a write touches small whatever the history holds: a real-time
#: cycle merges into this month's files only, re-flagging a stored neighbour rewrites a
#: month's file, and compacting one partition needs a month of one variable in memory.
#: (A lake made with variable and year partitions keeps them; writes follow the table.)
PARTITION_COLUMNS: list[str] = ["variable", "year", "month"]

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
        # Which of the provider's products gave the value (realtime2, monthly, verified,
        # upload, ...) and how far the stream trusts it: a stored value is replaced only
        # by one of equal or higher rank (null counts as 0, provisional).
        pa.field("source", pa.string()),
        pa.field("source_rank", pa.int8()),
        pa.field("year", pa.int32(), nullable=False),
        pa.field("month", pa.int8()),
    ]
)

#: Times as deltas, not dictionaries: a 10-minute series is a constant step, which delta
#: encoding stores in almost nothing (a month's time column: 982 kB as a dictionary, 34 kB
#: as deltas), so files are half the size.
_DELTA_ENCODED = ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
# Row groups of 16 k rows, about four stations of a variable-month in a file sorted by
# station: a station read decodes a quarter as much as with 128 k-row groups, and the
# regional scans measured the same (bench region).
WRITER_PROPERTIES = WriterProperties(
    max_row_group_size=16_384,
    compression="ZSTD",
    compression_level=3,
    column_properties={"time": _DELTA_ENCODED, "ingested_at": _DELTA_ENCODED},
)
TARGET_FILE_BYTES = 128 * 1024 * 1024
#: Files under this size are compaction's to merge; larger ones are what it already made.
SMALL_FILE_BYTES = TARGET_FILE_BYTES // 4
#: A file at least this large and COMPACTED_RATIO times its partition's typical file counts
#: as compacted already, even under SMALL_FILE_BYTES.
COMPACTED_MIN_BYTES = 1024 * 1024
COMPACTED_RATIO = 8


@dataclass(frozen=True)
class PartitionRewrite:
    """One partition compaction rewrites: its column values, from when, how many small files."""

    values: tuple[tuple[str, str], ...]
    since: datetime | None
    files: int

    @property
    def predicate(self) -> str:
        """The replaceWhere predicate: the partition, and the time it is rewritten from."""
        terms = [
            f"{c} = {_sql_list([v])}" if c == "variable" else f"{c} = {int(v)}"
            for c, v in self.values
        ]
        if self.since is not None:
            terms.append(f"time >= '{self.since.isoformat()}'")
        return " AND ".join(terms)


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
        if field.name in ("year", "month"):
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
    columns.append(pc.cast(pc.year(columns[2]), pa.int32()))
    columns.append(pc.cast(pc.month(columns[2]), pa.int8()))
    return pa.Table.from_arrays(columns, schema=OBSERVATION_SCHEMA)


def months_between(start: np.datetime64, end: np.datetime64) -> pc.Expression:
    """A filter on the year and month partitions covering [start, end]: a scan then opens
    only those partitions' files, not every file's footer to read its time statistics."""
    first = start.astype("datetime64[M]")
    last = end.astype("datetime64[M]")
    terms = []
    for month in np.arange(first, last + np.timedelta64(1, "M")):
        year, number = divmod(int(month.astype("int64")), 12)
        terms.append((pc.field("year") == 1970 + year) & (pc.field("month") == number + 1))
    expression = terms[0]
    for term in terms[1:]:
        expression = expression | term
    return expression


def dedupe(batch: pa.Table) -> pa.Table:
    """Keep the last row of each key within a batch, so a merge sees each key once."""
    if batch.num_rows == 0:
        return batch
    keys = row_keys(batch, KEY_COLUMNS)
    if keys is not None:
        keep = last_of_each(keys)
        return batch if len(keep) == batch.num_rows else batch.take(pa.array(keep))
    indexed = batch.append_column("__row", pa.array(range(batch.num_rows), pa.int64()))
    last = indexed.group_by(list(KEY_COLUMNS), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == batch.num_rows:
        return batch
    keep = last.column("__row_max")
    return batch.take(pc.take(keep, pc.sort_indices(keep)))


def missing_fields(table: DeltaTable) -> list[pa.Field]:
    """The fields of OBSERVATION_SCHEMA that the stored `table` lacks, in schema order.

    Non-empty for a table created before a column was added to the schema, until it is next
    opened for writing (`ObservationTable.delta`). Readers that bind columns by name (SQL
    views) can add these as typed nulls.
    """
    stored = {f.name for f in table.schema().fields}
    return [f for f in OBSERVATION_SCHEMA if f.name not in stored]


def _sql_list(values: list[object]) -> str:
    def lit(v: object) -> str:
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"

    return ", ".join(lit(v) for v in values)


#: Tables opened by this thread (see ObservationTable._open). Per thread: a DeltaTable
#: object is not meant to be brought up to date from two threads at once.
_OPENED = threading.local()


class ObservationTable:
    """The lake's long observation table at `<root>/tables/observations`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.url = storage.url("tables", "observations")
        self.options = storage.delta_options()

    def _open(self) -> DeltaTable | None:
        """The table at its newest version, opened once per thread and then brought up to
        date (reading only the commits since): opening replays the log from the last
        checkpoint, which on a region's table of thousands of files costs ~0.1 s, and a
        harvest cycle's QC and write steps each need the table."""
        cache: dict[str, DeltaTable] = _OPENED.__dict__.setdefault("tables", {})
        key = f"{self.url}|{sorted((self.options or {}).items())}"
        table = cache.get(key)
        # A table removed and made again at the same place (a test's or a benchmark's lake)
        # must not be brought up to date from the old one's state: its own commit file for
        # the version held must still be there.
        commit = f"{self.url}/_delta_log/{table.version():020d}.json" if table else ""
        if table is not None and self.storage.exists(commit):
            try:
                table.update_incremental()
                return table
            except (DeltaError, OSError):  # removed or replaced since: open it afresh
                pass
        cache.pop(key, None)
        table = open_table(self.url, self.options)
        if table is not None:
            cache[key] = table
        return table

    def exists(self) -> bool:
        return open_table(self.url, self.options) is not None

    def create(self) -> DeltaTable:
        """The table, created if needed, with every column of OBSERVATION_SCHEMA."""
        table = ensure_table(
            self.url, OBSERVATION_SCHEMA, self.options, PARTITION_COLUMNS, name="observations"
        )
        return self._evolve(table)

    def delta(self) -> DeltaTable:
        """The table opened for writing: created if needed, missing columns added."""
        table = self._open()
        if table is None:
            return self.create()
        return self._evolve(with_checkpoints(table))

    def _evolve(self, table: DeltaTable) -> DeltaTable:
        """`table` with the columns of OBSERVATION_SCHEMA it lacks added, in one commit.

        Only the log changes: stored files keep their columns and read the new ones as null,
        so no data file is rewritten. Done here, on the way to every write, and not by
        merging with `merge_schema=True`: the merge's change predicate names each flag
        column of the target and fails while one is missing, and appends and compaction
        need the column too. Raises StorageError for a missing column that may not be null
        (old rows would have no value for it).
        """
        missing = missing_fields(table)
        if not missing:
            return table
        required = [f.name for f in missing if not f.nullable]
        if required:
            raise StorageError(
                f"the table at {self.url} lacks required columns {required}; "
                "stored rows have no value for them, so they cannot be added"
            )

        def add() -> tuple[DeltaTable, list[pa.Field]]:
            # Re-read on each try: another writer may have added the columns meanwhile.
            current = open_table(self.url, self.options) or table
            still = missing_fields(current)
            if still:
                current.alter.add_columns([Field.from_arrow(f) for f in still])
            return current, still

        evolved, added = with_commit_retry(add, f"add columns to {self.url}")
        if added:
            log.info(
                "observations table %s: added columns %s (null in stored rows)",
                self.url,
                ", ".join(f.name for f in added),
            )
        return evolved

    def write(
        self,
        batch: pa.Table,
        *,
        unique_keys: bool = False,
        all_new: bool = False,
        cycle: str | None = None,
    ) -> WriteResult:
        """Merge a batch in: new keys are inserted, changed values replace older ones.

        Merge, not append: re-ingesting a response must change nothing. `unique_keys` says
        the caller already kept one row per key (the harvest job does, before QC).
        `all_new` says none of the keys can be stored yet (the harvest job knows it from
        the series' spans): then the rows are appended, which costs the same into an empty
        table or a full one. `cycle` tags the commit, so the series state written after it
        can be checked to be in step (`last_cycle`).
        """
        rows = conform(batch)
        if not unique_keys:
            rows = dedupe(rows)
        if rows.num_rows == 0:
            return WriteResult(0, 0, 0, None)
        # Sorted as compaction sorts, so a partition written once needs no compaction to
        # let row-group statistics skip other stations.
        rows = rows.sort_by([("station_id", "ascending"), ("time", "ascending")])
        commit = CommitProperties(custom_metadata={CYCLE_KEY: cycle}) if cycle else None
        if all_new:
            return self._append(rows, commit)
        predicate = self._merge_predicate(rows)
        changed = " OR ".join(
            f"(s.{c} IS DISTINCT FROM t.{c})"
            for c in (
                "value",
                "units",
                "provider_flag",
                "qc_agg",
                *QC_COLUMNS,
                "lon",
                "lat",
                "source",
            )
        )
        # Source priority, not ingest time: a provisional value never undoes a QC'd one.
        changed = f"({changed}) AND {RANK_WINS}"

        def merge() -> tuple[int, int, int]:
            table = self.delta()
            metrics = (
                table.merge(
                    rows,
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    writer_properties=WRITER_PROPERTIES,
                    commit_properties=commit,
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

    def _append(self, rows: pa.Table, commit: CommitProperties | None) -> WriteResult:
        def append() -> int:
            table = self.delta()
            write_deltalake(
                table,
                rows,
                mode="append",
                partition_by=table.metadata().partition_columns,
                writer_properties=WRITER_PROPERTIES,
                target_file_size=TARGET_FILE_BYTES,
                commit_properties=commit,
            )
            return self.delta().version()

        version = with_commit_retry(append, f"append to {self.url}")
        log.debug("appended %d new rows", rows.num_rows)
        return WriteResult(rows.num_rows, rows.num_rows, 0, version)

    def last_cycle(self) -> str | None:
        """The tag of the newest harvest cycle committed here (None if none is recent)."""
        return last_cycle(self._open())

    def _merge_predicate(self, rows: pa.Table) -> str:
        """The merge's join on the key, with literals that let delta-rs skip files.

        Partition values prune to the partitions the rows fall in, and the rows' time span
        skips files whose time statistics lie outside it (the files of earlier cycles), so
        the cost of a merge follows what it touches, not the size of the history.
        """
        parts = self.delta().metadata().partition_columns
        literals = [f"t.{c} IN ({_sql_list(pc.unique(rows.column(c)).to_pylist())})" for c in parts]
        start, end = pc.min(rows.column("time")).as_py(), pc.max(rows.column("time")).as_py()
        literals.append(f"t.time >= '{start.isoformat()}' AND t.time <= '{end.isoformat()}'")
        stations = pc.unique(rows.column("station_id")).to_pylist()
        if len(stations) <= 2000:
            # Files hold runs of stations (writes and compaction sort by station): their
            # statistics let a merge skip the files of other stations.
            literals.append(f"t.station_id IN ({_sql_list(stations)})")
        joins = [f"t.{c} = s.{c}" for c in (*parts, *KEY_COLUMNS)]
        return " AND ".join([*literals, *dict.fromkeys(joins)])

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
                partition_by=self.delta().metadata().partition_columns,
                storage_options=self.options,
                writer_properties=WRITER_PROPERTIES,
                target_file_size=TARGET_FILE_BYTES,
            ),
            f"append to {self.url}",
        )
        return WriteResult(rows.num_rows, rows.num_rows, 0, self.delta().version())

    def dataset(
        self, where: FileFilter | None = None, table: DeltaTable | None = None
    ) -> pds.Dataset:
        """A pyarrow dataset over the current version (empty table if none exists yet).

        With `where`, only over the files whose partition values and statistics say they
        may hold such rows: a dataset over a region's thousands of files costs seconds to
        build (delta-rs makes a partition expression per file in Python), one over the few
        files a harvest batch needs costs milliseconds. `table`: that version of the table
        rather than the newest.
        """
        table = table if table is not None else self._open()
        if table is None:
            return pds.dataset(OBSERVATION_SCHEMA.empty_table())
        # Reading never writes (a reader may hold read-only credentials): a table not yet
        # given a new column reads it as null, as it will be for these rows once added.
        schema = pa.schema(table.schema().to_arrow())
        for field in missing_fields(table):
            schema = schema.append(field.with_nullable(True))
        if where is None:
            return table.to_pyarrow_dataset(schema=schema)
        actions = pa.table(table.get_add_actions(flatten=True))
        files = select_files(actions, self.url, where)
        # The table's own schema, as delta-rs gives it, has string views that pyarrow's
        # filters cannot compare with plain strings; the files hold plain strings.
        schema = OBSERVATION_SCHEMA
        if not files:
            return pds.dataset(schema.empty_table())
        if self.storage.is_s3:
            filesystem: pafs.FileSystem = pafs.PyFileSystem(pafs.FSSpecHandler(self.storage.fs))
            base, files = self.url.removeprefix("s3://"), [f.removeprefix("s3://") for f in files]
        else:
            filesystem, base = pafs.LocalFileSystem(), self.url
        parts = table.metadata().partition_columns
        return pds.dataset(
            files,
            schema=schema,
            format="parquet",
            filesystem=filesystem,
            partitioning=pds.partitioning(
                pa.schema([schema.field(c) for c in parts]), flavor="hive"
            ),
            partition_base_dir=base,
        )

    def compaction_plan(
        self,
        min_files: int = 2,
        small_bytes: int = SMALL_FILE_BYTES,
        compacted_min_bytes: int = COMPACTED_MIN_BYTES,
    ) -> list[PartitionRewrite]:
        """The partitions holding at least `min_files` small files, and from when to rewrite.

        Small files are what writes leave: one per poll, or one per batch of stations in a
        backfill. A file counts as compacted already if it is at least `small_bytes`, or at
        least `compacted_min_bytes` and holds eight times the rows of the partition's typical
        file (the lower median): a small region's compacted month is a few MB, far under
        the size limit, and is not one more file to merge when a day of polls lands beside
        it. From the
        earliest time any small file holds, the partition's rows are rewritten; files wholly
        older than that (what compaction made before) are left as they are, so a month
        compacted once is not rewritten for every day of polls after it.
        """
        table = self.delta()
        parts = table.metadata().partition_columns
        by_partition: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for add in pa.table(table.get_add_actions(flatten=True)).to_pylist():
            key = tuple(str(add[f"partition.{c}"]) for c in parts)
            by_partition.setdefault(key, []).append(add)
        plan: list[PartitionRewrite] = []
        for key, files in sorted(by_partition.items()):
            typical = statistics.median_low(f["num_records"] or 0 for f in files)

            def compacted(f: dict[str, Any], typical: int = typical) -> bool:
                return f["size_bytes"] >= small_bytes or (
                    f["size_bytes"] >= compacted_min_bytes
                    and (f["num_records"] or 0) >= COMPACTED_RATIO * typical
                )

            small = [f for f in files if not compacted(f)]
            if len(small) < min_files:
                continue
            # A partition of small files only is replaced whole: a predicate on partitions
            # alone lets delta-rs drop the old files unread, where one on time would make it
            # read them to keep the rows outside (several GB for a backfilled year).
            since = (
                min((f["min.time"] for f in small if f.get("min.time") is not None), default=None)
                if len(small) < len(files)
                else None
            )
            plan.append(PartitionRewrite(tuple(zip(parts, key, strict=True)), since, len(small)))
        return plan

    def compact(self, min_files: int = 2, small_bytes: int = SMALL_FILE_BYTES) -> int:
        """Rewrite the small files of each partition holding at least `min_files` of them,
        sorted by station and time (see `compaction_plan`). Returns the partitions rewritten.
        """
        plan = self.compaction_plan(min_files, small_bytes)
        for part in plan:
            self.rewrite_partition(part)
        return len(plan)

    def rewrite_partition(self, part: PartitionRewrite) -> None:
        """Replace the partition's rows from `part.since` on by the same rows sorted by
        station and time: one commit (replaceWhere), so readers see the old files or the
        new ones, holding in memory only the rows it rewrites. Partitions are independent:
        several may be rewritten at once (each commit is retried if another won the race).
        """
        with_commit_retry(functools.partial(self._rewrite, part), f"compact {part.predicate}")
        log.info("compacted %s: %d small files into sorted files", part.predicate, part.files)

    def _rewrite(self, part: PartitionRewrite) -> None:
        current = self.delta()
        flt = None
        for c, v in part.values:
            term = pc.field(c) == (v if c == "variable" else int(v))
            flt = term if flt is None else flt & term
        if part.since is not None:
            flt = flt & (pc.field("time") >= pa.scalar(part.since, pa.timestamp("us")))
        # Over this partition's files only: a dataset over every file of a backfilled
        # region costs seconds to build, once per partition rewritten.
        where = FileFilter(
            partitions={c: [v] for c, v in part.values},
            within={"time": (part.since, None)} if part.since is not None else {},
        )
        rows = self.dataset(where, table=current).to_table(filter=flt)
        rows = rows.sort_by([("station_id", "ascending"), ("time", "ascending")])
        write_deltalake(
            current,
            # By name: a table that gained a column has it last, not in schema order.
            rows.select(OBSERVATION_SCHEMA.names).cast(OBSERVATION_SCHEMA),
            mode="overwrite",
            predicate=part.predicate,
            partition_by=current.metadata().partition_columns,
            writer_properties=WRITER_PROPERTIES,
            target_file_size=TARGET_FILE_BYTES,
        )

    def vacuum(self, retention: timedelta = timedelta(days=7)) -> list[str]:
        """Delete files no longer in the table and older than `retention`. Returns them."""
        table = self.delta()
        hours = int(retention.total_seconds() // 3600)
        return list(
            table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        )
