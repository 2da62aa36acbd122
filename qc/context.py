"""Earlier and later values of a series, read from the lake, for the windowed tests.

Spike, rate of change, flat line, time gap and location range look at neighbouring points.
To give a value at a batch boundary the flag it would get in the middle of a series, the
runner flags the batch together with the `points` stored values before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from lake.tables import OBSERVATION_SCHEMA
from qc.runner import SeriesKey

#: How far the first, cheap read reaches, in sampling intervals per point wanted.
_REACH = 4


@dataclass(frozen=True)
class Window:
    """Stored rows around a time span: `before` (last points), `between`, `after` (first)."""

    before: pa.Table
    between: pa.Table
    after: pa.Table
    before_truncated: bool
    after_truncated: bool


def _ts(value: np.datetime64) -> pa.Scalar:
    return pa.scalar(value.astype("datetime64[us]"), pa.timestamp("us"))


def series_filter(key: SeriesKey) -> pc.Expression:
    """The scan filter of one series: partition (variable) and numbers only.

    Station and dataset ids are matched after the scan (`only_series`): delta-rs writes
    strings as string_view in some files, and pyarrow 26 cannot push a string comparison
    down to those ("no kernel matching (string, string_view)").
    """
    _, _, variable, z = key
    return (pc.field("variable") == variable) & (pc.field("z") == z)


def only_series(rows: pa.Table, key: SeriesKey) -> pa.Table:
    """Rows of `rows` that belong to the series `key`."""
    dataset_id, station_id, _, _ = key
    return rows.filter(
        pc.and_(
            pc.equal(rows.column("dataset_id"), dataset_id),
            pc.equal(rows.column("station_id"), station_id),
        )
    )


def read_window(
    dataset: pds.Dataset,
    key: SeriesKey,
    start: np.datetime64,
    end: np.datetime64,
    points: int,
    interval: timedelta,
    columns: list[str] | None = None,
) -> Window:
    """Stored rows of one series in [start, end] plus `points` rows on each side.

    First reads a time window a few intervals wide; only if that holds too few points (a gap
    in the record) does it read the whole side of the series.
    """
    base = series_filter(key)
    reach = np.timedelta64(int(max(interval.total_seconds() * points * _REACH, 86400)), "s")
    cols = columns or [f.name for f in OBSERVATION_SCHEMA]

    def scan(flt: pc.Expression) -> pa.Table:
        return only_series(dataset.to_table(columns=cols, filter=base & flt), key)

    between = scan((pc.field("time") >= _ts(start)) & (pc.field("time") <= _ts(end)))
    before = scan((pc.field("time") < _ts(start)) & (pc.field("time") >= _ts(start - reach)))
    if before.num_rows <= points:
        before = scan(pc.field("time") < _ts(start))
    before = before.sort_by("time")
    before_truncated = before.num_rows > points
    before = before.slice(max(0, before.num_rows - points))
    after = scan((pc.field("time") > _ts(end)) & (pc.field("time") <= _ts(end + reach)))
    if after.num_rows <= points:
        after = scan(pc.field("time") > _ts(end))
    after = after.sort_by("time")
    after_truncated = after.num_rows > points
    after = after.slice(0, points)
    return Window(before, between.sort_by("time"), after, before_truncated, after_truncated)


def neighbor_values(
    dataset: pds.Dataset,
    variable: str,
    stations: tuple[str, ...],
    times: np.ndarray,
    max_diff_s: float,
    exclude_station: str,
) -> np.ndarray:
    """The mean of the neighbour stations' values nearest in time to each of `times`.

    A neighbour value counts only within `max_diff_s` seconds; NaN where none does. A
    station is named by its full id or by its last part ('44029').
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    if len(times) == 0:
        return np.zeros(0)
    tol = np.timedelta64(int(max_diff_s), "s")
    lo, hi = times.min() - tol, times.max() + tol
    rows = dataset.to_table(
        columns=["station_id", "time", "value"],
        filter=(pc.field("variable") == variable)
        & (pc.field("time") >= _ts(lo))
        & (pc.field("time") <= _ts(hi)),
    )
    total = np.zeros(len(times))
    count = np.zeros(len(times))
    ids = rows.column("station_id").to_pylist()
    for station in stations:
        mask = np.array(
            [s != exclude_station and station in (s, s.rsplit(":", 1)[-1]) for s in ids],
            dtype=bool,
        )
        if not mask.any():
            continue
        part = rows.filter(pa.array(mask)).sort_by("time")
        t = part.column("time").to_numpy().astype("datetime64[ns]")
        v = part.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        idx = np.clip(np.searchsorted(t, times), 1, len(t)) - 1
        nxt = np.clip(idx + 1, 0, len(t) - 1)
        pick = np.where(np.abs(t[nxt] - times) < np.abs(t[idx] - times), nxt, idx)
        close = (np.abs(t[pick] - times) <= tol) & ~np.isnan(v[pick])
        total[close] += v[pick][close]
        count[close] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
