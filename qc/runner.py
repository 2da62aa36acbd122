"""Run the QARTOD tests of a series through ioos_qc and add the flag columns to rows.

Pure functions on arrays and Arrow tables: no I/O here, so the real-time path, the history
reprocessing on Dask and the benchmark all run exactly this code.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.flags import FAIL, MISSING, NOT_EVALUATED, PASS, SUSPECT
from lake.tables import KEY_COLUMNS, QC_COLUMNS, QC_TESTS
from qc.aggregate import aggregate
from qc.catalogue import (
    MonthRange,
    Series,
    run_test,
)
from qc.config import SeriesPlan
from qc.provider_flags import provider_qartod

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str, str, float]  # dataset_id, station_id, variable, z


def run_series(
    time: np.ndarray,
    value: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    plan: SeriesPlan,
    *,
    climatology: Sequence[MonthRange] = (),
    neighbor: np.ndarray | None = None,
    provider_flag: Sequence[str | None] | None = None,
) -> dict[str, np.ndarray]:
    """The flags of one time-sorted series: one int8 array per `qc_<test>` and `qc_agg`.

    `time` is datetime64 (UTC). Tests not in the plan get 2 (not evaluated). `neighbor`
    holds the neighbouring station's value at each time (NaN where it has none).
    """
    n = len(value)
    time = np.asarray(time, dtype="datetime64[ns]")
    value = np.asarray(value, dtype=np.float64)
    out = {col: np.full(n, NOT_EVALUATED, dtype=np.int8) for col in QC_COLUMNS}
    series = Series(time, value, lon, lat, plan.flat_line_interval_s, climatology, neighbor)
    run: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for test, params in plan.tests.items():
            flags = run_test(test, params, series)
            out[f"qc_{test}"] = flags
            run[test] = flags
    provider = None
    if plan.keep_provider_flags and provider_flag is not None:
        provider = provider_qartod(plan.provider_kind, provider_flag)
    out["qc_agg"] = aggregate(run, provider, n)
    return out


PlanLookup = Callable[[SeriesKey], SeriesPlan]
ClimatologyLookup = Callable[[SeriesKey], Sequence[MonthRange]]
NeighborLookup = Callable[[SeriesKey, np.ndarray], np.ndarray | None]


def sort_series(rows: pa.Table) -> pa.Table:
    """Rows grouped by series, each in time order, so every series is one contiguous run."""
    return ordered_series(rows)[0]


def ordered_series(rows: pa.Table) -> tuple[pa.Table, list[tuple[SeriesKey, int, int]]]:
    """Rows grouped by series, each in time order, and (key, start, stop) of each series.

    A full multi-key sort (or a hash grouping) of millions of rows costs seconds with string
    keys, so the common case is found by comparing neighbouring rows instead: rows grouped
    by series already (a reprocessing task, a harvest of one station, the benchmark) stay
    in place, and a series out of time order is sorted on its own with numpy. Anything
    else gets the full sort.
    """
    n = rows.num_rows
    if n == 0:
        return rows, []
    keys = list(KEY_COLUMNS[:4])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    if n > 1:
        for k in keys:
            col = rows.column(k)
            differs = pc.not_equal(col.slice(1), col.slice(0, n - 1))
            change[1:] |= np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], n)
    cols = [rows.column(k).take(pa.array(starts)).to_pylist() for k in keys]
    run_keys = [(cols[0][i], cols[1][i], cols[2][i], float(cols[3][i])) for i in range(len(starts))]
    if len(set(run_keys)) != len(run_keys):
        # A series in several pieces (a station's history file, then its real-time file):
        # the pieces of each series put together, oldest first, as slices (no copy), then
        # ordered as any other batch.
        return ordered_series(_pieces_together(rows, starts, stops, run_keys))
    time = rows.column("time").cast(pa.int64()).to_numpy()
    backwards = np.zeros(n, dtype=bool)
    backwards[1:] = time[1:] < time[:-1]
    backwards[starts] = False
    # Series stay in the order they come: flagging needs each series whole and in time
    # order, not the series sorted among themselves (that would copy the batch).
    by_key = list(range(len(starts)))
    in_place = not backwards.any()
    bounds: list[tuple[SeriesKey, int, int]] = []
    pieces: list[pa.Table] = []
    at = 0
    for i in by_key:
        start, stop = int(starts[i]), int(stops[i])
        size = stop - start
        if not in_place:
            # Only a series out of time order is copied (a real-time file lists its newest
            # record first); the others are slices of the batch as it is.
            piece = rows.slice(start, size)
            if backwards[start:stop].any():
                piece = piece.take(pa.array(np.argsort(time[start:stop], kind="stable")))
            pieces.append(piece)
        bounds.append((run_keys[i], at, at + size))
        at += size
    if not in_place:
        rows = pa.concat_tables(pieces)
    return rows, bounds


def _pieces_together(
    rows: pa.Table, starts: np.ndarray, stops: np.ndarray, run_keys: list[SeriesKey]
) -> pa.Table:
    """The runs of `rows` regrouped so each series' runs are adjacent, by their first time."""
    first_time = rows.column("time").take(pa.array(starts)).cast(pa.int64()).to_numpy()
    order = sorted(range(len(starts)), key=lambda i: (run_keys[i], int(first_time[i])))
    return pa.concat_tables([rows.slice(int(starts[i]), int(stops[i] - starts[i])) for i in order])


def series_bounds(rows: pa.Table) -> list[tuple[SeriesKey, int, int]]:
    """(key, start, stop) of each series in rows already sorted by `sort_series`."""
    if rows.num_rows == 0:
        return []
    keys = list(KEY_COLUMNS[:4])
    indexed = rows.select(keys).append_column("__i", pa.array(np.arange(rows.num_rows)))
    groups = indexed.group_by(keys, use_threads=False).aggregate([("__i", "min"), ("__i", "max")])
    groups = groups.sort_by("__i_min")
    cols = [groups.column(k).to_pylist() for k in keys]
    starts = groups.column("__i_min").to_numpy()
    stops = groups.column("__i_max").to_numpy() + 1
    return [
        ((cols[0][i], cols[1][i], cols[2][i], float(cols[3][i])), int(starts[i]), int(stops[i]))
        for i in range(groups.num_rows)
    ]


def flag_table(
    rows: pa.Table,
    plans: PlanLookup,
    *,
    climatology: ClimatologyLookup | None = None,
    neighbors: NeighborLookup | None = None,
) -> pa.Table:
    """`rows` sorted by series and time, with every `qc_<test>` column and `qc_agg` set.

    Each series is flagged as a whole, so give it enough context around what matters
    (qc.context does, for a real-time batch). The provider's flag column is left as it is.
    """
    rows, bounds = ordered_series(rows)
    n = rows.num_rows
    flags = {col: np.full(n, NOT_EVALUATED, dtype=np.int8) for col in (*QC_COLUMNS, "qc_agg")}
    if n:
        time = rows.column("time").to_numpy().astype("datetime64[ns]")
        value = _floats(rows, "value")
        lon = _floats(rows, "lon")
        lat = _floats(rows, "lat")
        provider = (
            rows.column("provider_flag").to_pylist()
            if "provider_flag" in rows.column_names
            else None
        )
        for key, start, stop in bounds:
            plan = plans(key)
            part = slice(start, stop)
            result = run_series(
                time[part],
                value[part],
                lon[part],
                lat[part],
                plan,
                climatology=(
                    climatology(key) if climatology and "climatology" in plan.tests else ()
                ),
                neighbor=neighbors(key, time[part]) if neighbors and plan.neighbors else None,
                provider_flag=(
                    provider[part] if provider is not None and plan.keep_provider_flags else None
                ),
            )
            for col, arr in result.items():
                flags[col][part] = arr
    for col in ("qc_agg", *QC_COLUMNS):
        array = pa.array(flags[col], pa.int8())
        if col in rows.column_names:
            rows = rows.set_column(rows.schema.get_field_index(col), col, array)
        else:
            rows = rows.append_column(col, array)
    return rows


def _floats(rows: pa.Table, name: str) -> np.ndarray:
    if name not in rows.column_names:
        return np.full(rows.num_rows, np.nan)
    col = pc.cast(rows.column(name), pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


__all__ = [
    "FAIL",
    "MISSING",
    "NOT_EVALUATED",
    "PASS",
    "QC_TESTS",
    "SUSPECT",
    "MonthRange",
    "flag_table",
    "ordered_series",
    "run_series",
    "series_bounds",
    "sort_series",
]
