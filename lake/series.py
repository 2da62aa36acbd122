"""The state of every series, kept at write time: its time span and its latest value.

One row per series (dataset, station, variable, z) in `<root>/tables/series`: the first and
last time stored, and the value, flag, units and position at the last time. Two things
read it:

- the harvest job, as per-series high-water marks: a real-time poll sends only values
  newer than what the lake holds, so the 45 days of a real-time file are not merged again
  every ten minutes;
- the real-time map and `latest` view: the newest value of every station without scanning
  the observation table.

It is derived from the observation table and written after it, so it may lag behind (a
writer killed between the two commits). That is safe: a lagging mark only sends more rows
to the observation table's merge, which keeps one row per key anyway, and the next write
brings the marks forward. It never runs ahead, because it is written second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable

from lake.delta import CYCLE_KEY, ensure_table, last_cycle, open_table, with_commit_retry
from lake.keys import codes_in, group_codes, time_micros
from lake.storage import Storage

log = logging.getLogger(__name__)

SERIES_KEY: tuple[str, ...] = ("dataset_id", "station_id", "variable", "z")
_UTC = {"timezone": "UTC"}
SERIES_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string(), nullable=False),
        pa.field("station_id", pa.string(), nullable=False),
        pa.field("variable", pa.string(), nullable=False),
        pa.field("z", pa.float64(), nullable=False),
        pa.field("first_time", pa.timestamp("us"), nullable=False, metadata=_UTC),
        pa.field("last_time", pa.timestamp("us"), nullable=False, metadata=_UTC),
        pa.field("value", pa.float64()),
        pa.field("units", pa.string()),
        pa.field("qc_agg", pa.int8()),
        pa.field("lon", pa.float64()),
        pa.field("lat", pa.float64()),
    ]
)
_LATEST = ("value", "units", "qc_agg", "lon", "lat")


@dataclass(frozen=True, slots=True)
class Marks:
    """First and last stored time of each series, as arrays aligned with `keys`."""

    keys: pa.Table  # SERIES_KEY columns plus first_time, last_time

    def split_known(self, rows: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(rows outside their series' stored span or of a new series, the rest).

        `rows` are in the observation table's schema. Rows inside the span (from the first
        to the last stored time) are "known": a real-time poll drops them, a backfill
        merges them (and a merge finds whether they differ).
        """
        if rows.num_rows == 0 or self.keys.num_rows == 0:
            return rows, rows.slice(0, 0)
        known = pa.array(self.known_mask(rows))
        return rows.filter(pc.invert(known)), rows.filter(known)

    def known_mask(self, rows: pa.Table) -> np.ndarray:
        """True for each row inside its series' stored span (see `split_known`)."""
        if rows.num_rows == 0 or self.keys.num_rows == 0:
            return np.zeros(rows.num_rows, bool)
        grouped = group_codes(rows, SERIES_KEY)
        if grouped is None:
            return self._known_by_join(rows)
        series, columns = grouped
        marked = codes_in(self.keys, SERIES_KEY, columns)
        held = marked >= 0
        order = np.argsort(marked[held], kind="stable")
        codes = marked[held][order]
        first = time_micros(self.keys.column("first_time"))[held][order]
        last = time_micros(self.keys.column("last_time"))[held][order]
        if len(codes) == 0:
            return np.zeros(rows.num_rows, bool)
        at = np.minimum(np.searchsorted(codes, series), len(codes) - 1)
        time = time_micros(rows.column("time"))
        inside: np.ndarray = (codes[at] == series) & (time >= first[at]) & (time <= last[at])
        return inside

    def _known_by_join(self, rows: pa.Table) -> np.ndarray:
        """`known_mask` by an Arrow join, for rows whose keys cannot be coded as integers."""
        indexed = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
        joined = indexed.select([*SERIES_KEY, "time", "__row"]).join(
            self.keys.select([*SERIES_KEY, "first_time", "last_time"]),
            keys=list(SERIES_KEY),
            join_type="left outer",
        )
        time = joined.column("time")
        inside = pc.and_(
            pc.less_equal(time, joined.column("last_time")),
            pc.greater_equal(time, joined.column("first_time")),
        )
        mask = np.zeros(rows.num_rows, bool)
        mask[np.asarray(joined.column("__row"))] = np.asarray(pc.fill_null(inside, False))
        return mask

    def station_spans(self, dataset_id: str) -> dict[str, tuple[datetime, datetime]]:
        """Per station of `dataset_id`, the times that every one of its stored series
        covers: from the latest first time to the earliest last time.

        A record inside that span is known for every variable the station has reported,
        so a parser may skip it before any work (a real-time file is 45 days, of which one
        record is new). Stations whose series share no common span are left out.
        """
        keys = self.keys.filter(pc.equal(self.keys.column("dataset_id"), dataset_id))
        if keys.num_rows == 0:
            return {}
        spans = keys.group_by("station_id", use_threads=False).aggregate(
            [("first_time", "max"), ("last_time", "min")]
        )
        return {
            row["station_id"]: (row["first_time_max"], row["last_time_min"])
            for row in spans.to_pylist()
            if row["first_time_max"] <= row["last_time_min"]
        }


class SeriesTable:
    """`<root>/tables/series`: one row per series, updated after each observation write."""

    def __init__(self, storage: Storage) -> None:
        self.url = storage.url("tables", "series")
        self.options = storage.delta_options()

    def read(self) -> pa.Table:
        """Every series' state (an empty table before the first write)."""
        table = open_table(self.url, self.options)
        if table is None:
            return SERIES_SCHEMA.empty_table()
        return table.to_pyarrow_dataset().to_table()

    def marks(self, dataset_id: str | None = None) -> Marks:
        """High-water marks of every series (of one dataset)."""
        state = self.read()
        if dataset_id is not None and state.num_rows:
            state = state.filter(pc.equal(state.column("dataset_id"), dataset_id))
        return Marks(state.select([*SERIES_KEY, "first_time", "last_time"]))

    def last_cycle(self) -> str | None:
        """The tag of the newest harvest cycle folded in here."""
        return last_cycle(open_table(self.url, self.options))

    def update(self, written: pa.Table, cycle: str | None = None) -> int:
        """Fold rows just written to the observation table into the series' state.

        One merge commit: a series' span widens to cover the rows, and its latest value
        moves only when the rows reach later than what is stored. Returns the number of
        series touched; writes nothing for an empty batch.
        """
        summary = summarize(written)
        if summary.num_rows == 0:
            return 0
        ensure_table(self.url, SERIES_SCHEMA, self.options, name="series")

        def merge() -> None:
            (
                DeltaTable(self.url, storage_options=self.options)
                .merge(
                    summary,
                    predicate=" AND ".join(f"t.{c} = s.{c}" for c in SERIES_KEY),
                    source_alias="s",
                    target_alias="t",
                    commit_properties=(
                        CommitProperties(custom_metadata={CYCLE_KEY: cycle}) if cycle else None
                    ),
                )
                .when_matched_update(
                    updates={"first_time": "least(t.first_time, s.first_time)"},
                    predicate="s.last_time <= t.last_time",
                )
                .when_matched_update(
                    updates={
                        "first_time": "least(t.first_time, s.first_time)",
                        "last_time": "s.last_time",
                        **{c: f"s.{c}" for c in _LATEST},
                    },
                )
                .when_not_matched_insert_all()
                .execute()
            )

        with_commit_retry(merge, f"update series state at {self.url}")
        log.debug("series state: %d series updated", summary.num_rows)
        return int(summary.num_rows)


def summarize(rows: pa.Table) -> pa.Table:
    """One row per series of `rows` (observation schema): span and the row at its last time."""
    if rows.num_rows == 0:
        return SERIES_SCHEMA.empty_table()
    grouped = group_codes(rows, SERIES_KEY)
    if grouped is None:
        return _summarize_by_group_by(rows)
    series = grouped[0]
    # Sorted by series then time: each series' first and last rows bound its run.
    order = np.lexsort((time_micros(rows.column("time")), series))
    ordered = series[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)] - 1
    last_rows = rows.take(pa.array(order[ends]))
    columns = {c: last_rows.column(c) for c in SERIES_KEY}
    columns["first_time"] = rows.column("time").take(pa.array(order[starts]))
    columns["last_time"] = last_rows.column("time")
    for c in _LATEST:
        columns[c] = last_rows.column(c)
    return pa.table(columns).cast(SERIES_SCHEMA)


def _summarize_by_group_by(rows: pa.Table) -> pa.Table:
    """`summarize` with Arrow's group-by, for rows whose keys cannot be coded as integers."""
    spans = rows.group_by(list(SERIES_KEY), use_threads=False).aggregate(
        [("time", "min"), ("time", "max")]
    )
    # The row at each series' last time: sort by key and time, keep each key's last row.
    ordered = rows.select([*SERIES_KEY, "time", *_LATEST]).sort_by(
        [*((c, "ascending") for c in SERIES_KEY), ("time", "ascending")]
    )
    ends = ordered.group_by(list(SERIES_KEY), use_threads=False).aggregate(
        [(c, "last") for c in ("time", *_LATEST)]
    )
    joined = spans.join(ends, keys=list(SERIES_KEY))
    columns = {c: joined.column(c) for c in SERIES_KEY}
    columns["first_time"] = joined.column("time_min")
    columns["last_time"] = joined.column("time_max")
    for c in _LATEST:
        columns[c] = joined.column(f"{c}_last")
    return pa.table(columns).cast(SERIES_SCHEMA)
