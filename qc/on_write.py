"""QC of rows on their way into the lake: the `BEFORE_WRITE` step of the harvest pipeline.

A batch is flagged together with the stored values around it (qc.context), so a value at a
batch boundary gets the flag it would get in the middle of the series. Stored neighbours
whose flags change because of the new values (the last value before a batch: its spike
test now has a next value) are returned too, so the merge updates them in the same commit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lake.registry import Stream
from lake.series import SeriesTable
from lake.snapshot import FileFilter
from lake.storage import Storage
from lake.tables import (
    OBSERVATION_SCHEMA,
    QC_COLUMNS,
    ObservationTable,
    conform,
    months_between,
)
from qc.climatology import load_climatology
from qc.config import WINDOWED_TESTS, SeriesPlan, plan_for, threshold_table
from qc.context import Window, neighbor_values, read_window
from qc.runner import MonthRange, SeriesKey, flag_table, ordered_series

log = logging.getLogger(__name__)

FLAG_COLUMNS = ("qc_agg", *QC_COLUMNS)
_ROLE = "__qc_role"  # 0 new row, 1 stored neighbour (written if its flags change), 2 edge
NEW, CONTEXT, EDGE = 0, 1, 2


class Planner:
    """SeriesPlan per (station, variable) of one stream, computed once."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.table = threshold_table()
        self._plans: dict[tuple[str, str], SeriesPlan] = {}

    def __call__(self, key: SeriesKey) -> SeriesPlan:
        station, variable = key[1], key[2]
        plan = self._plans.get((station, variable))
        if plan is None:
            plan = plan_for(self.stream, station, variable, self.table)
            self._plans[(station, variable)] = plan
        return plan


def qc_before_write(storage: Storage, stream: Stream, rows: pa.Table) -> pa.Table:
    """Normalized rows with QARTOD flags, plus stored neighbours whose flags changed.

    The harvest job's QC step; it gives rows with one row per key (conformed and deduplicated
    once, before QC), so they are only conformed here (free for rows already in the table
    schema). The provider's own flag is kept.
    """
    if rows.num_rows == 0:
        return rows
    batch = conform(rows)
    out = flag_batch(storage, stream, batch, only_changed=False)
    log.debug(
        "stream=%s: flagged %d new values, %d stored neighbours re-flagged",
        stream.id,
        batch.num_rows,
        out.num_rows - batch.num_rows,
    )
    return out


def flag_batch(
    storage: Storage,
    stream: Stream,
    batch: pa.Table,
    *,
    only_changed: bool,
    dataset: pds.Dataset | None = None,
    climatology: Mapping[SeriesKey, Sequence[MonthRange]] | None = None,
) -> pa.Table:
    """Flag `batch` (conformed rows of one stream) with its stored context.

    Returns the batch rows and the stored neighbours whose flags changed; with
    `only_changed` (reprocessing stored rows) only the batch rows whose flags differ.
    """
    planner = Planner(stream)
    batch, bounds = ordered_series(batch)
    needs_context = any(
        any(t in WINDOWED_TESTS for t in planner(key).tests) for key, _, _ in bounds
    )
    needs_lake = needs_context or any(
        "climatology" in planner(k).tests or planner(k).neighbors for k, _, _ in bounds
    )
    whole: Callable[[], pds.Dataset] = lambda: dataset  # noqa: E731
    if needs_lake and dataset is None:
        # The files near the batch only; the whole table only if a series' window reaches
        # beyond them (a long outage), built then.
        with_neighbors = any(planner(k).neighbors for k, _, _ in bounds)
        dataset = _near_batch(storage, batch, _reach(stream), all_stations=with_neighbors)
        whole = functools.cache(ObservationTable(storage).dataset)
    if climatology is None:
        climatology = (
            load_climatology(storage)
            if any("climatology" in planner(k).tests for k, _, _ in bounds)
            else {}
        )
    pieces = [_with_role(batch, NEW)]
    if needs_context:
        assert dataset is not None
        nearby = StoredNearby(storage, dataset, whole, batch, bounds, stream)
        pieces += _stored_context(nearby, batch, bounds, planner, stream)
    combined = pa.concat_tables([_old_flags(p) for p in pieces], promote_options="default")
    flagged = flag_table(
        combined,
        planner,
        climatology=lambda key: climatology.get(key, ()),
        neighbors=_neighbor_lookup(dataset, planner) if dataset is not None else None,
    )
    keep = _keep_mask(flagged, only_changed)
    # A backfill keeps every row: filtering would copy millions of rows to drop none.
    out = flagged if pc.all(keep).as_py() else flagged.filter(keep)
    return out.drop_columns([c for c in out.column_names if c.startswith("__")])


class StoredNearby:
    """The stored rows near a batch, read once for all its series.

    A real-time cycle flags thousands of series, each needing a few stored values on either
    side; reading those series by series costs a scan of the table each. The series' state
    (lake.series) says where each series has stored values: a series with none near its new
    values needs no read at all (a backfill of new stations), and the others are served by
    one read of their variables over the span where stored and new values meet. A series
    whose window reaches past that span (a long outage), or a lake without series state
    (written by other means), is read on its own, as before.
    """

    def __init__(
        self,
        storage: Storage,
        dataset: pds.Dataset,
        whole: Callable[[], pds.Dataset],
        batch: pa.Table,
        bounds: list[tuple[SeriesKey, int, int]],
        stream: Stream,
    ) -> None:
        self.whole = whole
        state = SeriesTable(storage).read()
        self.known_state = state.num_rows > 0
        self.spans = {
            (r["dataset_id"], r["station_id"], r["variable"], r["z"]): (
                np.datetime64(r["first_time"], "us"),
                np.datetime64(r["last_time"], "us"),
            )
            for r in state.to_pylist()
        }
        self.reach = _reach(stream)
        times = batch.column("time").to_numpy().astype("datetime64[us]")
        lows, highs, variables = [], [], set()
        for key, first, stop in bounds:
            overlap = self._overlap(key, times[first:stop].min(), times[first:stop].max())
            if overlap is not None:
                lows.append(overlap[0])
                highs.append(overlap[1])
                variables.add(key[2])
        self.start = min(lows) if lows else np.datetime64("NaT")
        self.end = max(highs) if highs else np.datetime64("NaT")
        rows = OBSERVATION_SCHEMA.empty_table()
        self.near: dict[SeriesKey, pa.Table] = {}
        if lows:
            wanted = pc.field("variable").isin(sorted(variables))
            if "month" in ObservationTable(storage).delta().metadata().partition_columns:
                wanted = months_between(self.start, self.end) & wanted
            rows = dataset.to_table(
                filter=wanted
                & (pc.field("time") >= pa.scalar(self.start, pa.timestamp("us")))
                & (pc.field("time") <= pa.scalar(self.end, pa.timestamp("us")))
            )
            # The batch's stations only, filtered in memory: the files store strings as
            # views, which pyarrow's row-group pruning cannot compare with a string.
            stations = pa.array(sorted({k[1] for k, _, _ in bounds}))
            rows = rows.filter(pc.is_in(rows.column("station_id"), value_set=stations))
        self.near = _by_series(rows)

    def _overlap(
        self, key: SeriesKey, start: np.datetime64, end: np.datetime64
    ) -> tuple[np.datetime64, np.datetime64] | None:
        """Where the series' stored values meet its new ones (widened by the reach)."""
        span = self.spans.get(key)
        if span is None:
            return None
        low, high = max(start - self.reach, span[0]), min(end + self.reach, span[1])
        return (low, high) if low <= high else None

    def window(
        self,
        key: SeriesKey,
        start: np.datetime64,
        end: np.datetime64,
        points: int,
        cadence: timedelta,
    ) -> Window:
        """`read_window` from the rows read once, or from the table if they fall short."""
        if not self.known_state:
            return read_window(self.whole(), key, start, end, points, cadence)
        span = self.spans.get(key)
        if span is None:  # no stored values: nothing around the new ones
            empty = OBSERVATION_SCHEMA.empty_table()
            return Window(empty, empty, empty, False, False)
        found = _window_of_sorted(
            self.near.get(key, OBSERVATION_SCHEMA.empty_table()), start, end, points
        )
        stored_outside = (not found.before_truncated and span[0] < start - self.reach) or (
            not found.after_truncated and span[1] > end + self.reach
        )
        if stored_outside:
            return read_window(self.whole(), key, start, end, points, cadence)
        return found


def _reach(stream: Stream) -> np.timedelta64:
    """How far around a batch stored values are read at once: 200 intervals, at least a day
    (a series with a longer gap before its new values is read on its own)."""
    return np.timedelta64(int(max(stream.cadence.total_seconds() * 200, 86400)), "s")


def _near_batch(
    storage: Storage, batch: pa.Table, reach: np.timedelta64, *, all_stations: bool
) -> pds.Dataset:
    """The table's files that may hold the batch's variables (and stations, unless a
    neighbour test needs the others) within `reach` of its times."""
    times = batch.column("time")
    start = pc.min(times).as_py() - reach.astype(timedelta)
    end = pc.max(times).as_py() + reach.astype(timedelta)
    within: dict[str, tuple[object | None, object | None]] = {"time": (start, end)}
    if not all_stations:
        # Files hold runs of stations (writes sort by station): their ranges prune the rest.
        span = pc.min_max(batch.column("station_id")).as_py()
        within["station_id"] = (span["min"], span["max"])
    variables = pc.unique(batch.column("variable")).to_pylist()
    return ObservationTable(storage).dataset(
        FileFilter(partitions={"variable": variables}, within=within)
    )


def _by_series(rows: pa.Table) -> dict[SeriesKey, pa.Table]:
    """`rows` split by series, each sorted by time: a window is then two binary searches in
    its own rows, not a filter over every station's rows again for each series."""
    if rows.num_rows == 0:
        return {}
    keys = ["dataset_id", "station_id", "variable", "z"]
    # Sorted, each series is one run of rows: zero-copy slices instead of a take per series.
    rows = rows.sort_by([*((k, "ascending") for k in keys), ("time", "ascending")])
    runs = rows.group_by(keys, use_threads=False).aggregate([("time", "count")])
    out: dict[SeriesKey, pa.Table] = {}
    offset = 0
    for run in runs.to_pylist():
        key = (run["dataset_id"], run["station_id"], run["variable"], run["z"])
        out[key] = rows.slice(offset, run["time_count"])
        offset += run["time_count"]
    return out


def _window_of_sorted(
    rows: pa.Table, start: np.datetime64, end: np.datetime64, points: int
) -> Window:
    """`read_window` over one series' rows already sorted by time: the rows in
    [start, end] and `points` rows on each side, found by binary search."""
    times = rows.column("time").to_numpy().astype("datetime64[us]")
    first = int(np.searchsorted(times, start.astype("datetime64[us]"), side="left"))
    stop = int(np.searchsorted(times, end.astype("datetime64[us]"), side="right"))
    return Window(
        before=rows.slice(max(0, first - points), min(first, points)),
        between=rows.slice(first, stop - first),
        after=rows.slice(stop, points),
        before_truncated=first > points,
        after_truncated=rows.num_rows - stop > points,
    )


def _stored_context(
    nearby: StoredNearby,
    batch: pa.Table,
    bounds: list[tuple[SeriesKey, int, int]],
    planner: Planner,
    stream: Stream,
) -> list[pa.Table]:
    """Stored rows around each series of `batch` that a windowed test looks at, with their
    roles: stored values before and after (re-flagged, written if their flags change),
    stored values between the new ones that the batch does not replace, and the outermost
    rows of a truncated window (edges: read for context, never written)."""
    pieces = []
    times = batch.column("time").to_numpy().astype("datetime64[us]")
    for key, start, stop in bounds:
        plan = planner(key)
        if not any(t in WINDOWED_TESTS for t in plan.tests):
            continue
        points = plan.window_points() + 2
        window = nearby.window(
            key,
            times[start:stop].min(),
            times[start:stop].max(),
            points,
            stream.cadence,
        )
        taken = times[start:stop].astype("int64")
        between = window.between
        if between.num_rows:
            stored = between.column("time").to_numpy().astype("datetime64[us]").astype("int64")
            between = between.filter(pa.array(~np.isin(stored, taken)))
        before_roles = np.full(window.before.num_rows, CONTEXT, np.int8)
        if window.before_truncated:
            before_roles[: max(0, window.before.num_rows - 1)] = EDGE
        after_roles = np.full(window.after.num_rows, CONTEXT, np.int8)
        if window.after_truncated and window.after.num_rows:
            after_roles[-1] = EDGE
        pieces += [
            _with_role(window.before, before_roles),
            _with_role(between, CONTEXT),
            _with_role(window.after, after_roles),
        ]
    return pieces


def _neighbor_lookup(
    dataset: pds.Dataset, planner: Planner
) -> Callable[[SeriesKey, np.ndarray], np.ndarray | None]:
    """Values of the nearby stations a series' neighbour test compares with, at times `t`;
    None for a series without that test."""

    def neighbors(key: SeriesKey, t: np.ndarray) -> np.ndarray | None:
        plan = planner(key)
        params = plan.tests.get("neighbor")
        if not params:
            return None
        return neighbor_values(
            dataset, key[2], plan.neighbors, t, float(params["max_time_diff_s"]), key[1]
        )

    return neighbors


def _with_role(table: pa.Table, role: int | np.ndarray) -> pa.Table:
    values = np.full(table.num_rows, role, np.int8) if isinstance(role, int) else role
    if _ROLE in table.column_names:
        table = table.drop_columns([_ROLE])
    return table.append_column(_ROLE, pa.array(values, pa.int8()))


def _old_flags(table: pa.Table) -> pa.Table:
    """Keep the flags a row carries as __old_<col>, to see afterwards what changed."""
    for col in FLAG_COLUMNS:
        old = (
            table.column(col) if col in table.column_names else pa.nulls(table.num_rows, pa.int8())
        )
        table = table.append_column(f"__old_{col}", pc.cast(old, pa.int8()))
    return table


def _keep_mask(flagged: pa.Table, only_changed: bool) -> pa.Array:
    role = flagged.column(_ROLE)
    changed = None
    for col in FLAG_COLUMNS:
        old = flagged.column(f"__old_{col}")
        diff = pc.or_kleene(pc.is_null(old), pc.not_equal(flagged.column(col), old))
        changed = diff if changed is None else pc.or_(changed, diff)
    assert changed is not None
    new = pc.equal(role, NEW)
    context = pc.and_(pc.equal(role, CONTEXT), changed)
    if only_changed:
        # Reprocessing: values are as stored, so a neighbour outside the window has no
        # reason to change; re-flagging it with new thresholds would leak past the window.
        return pc.fill_null(pc.and_(new, changed), False)
    return pc.fill_null(pc.or_(new, context), False)
