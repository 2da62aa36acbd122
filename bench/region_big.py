"""A lake of more than 169 M values, for timing one station's poll into it.

Backfilling 169 M values through the harvester would take most of an hour here; what the
poll figure needs is a table of that size laid out as the harvester and compaction leave
it. So the history is written straight through `ObservationTable.write` (appends, sorted
by station and time, one commit per month) with the series state updated after each,
exactly as the harvest job does after QC. The values are synthetic (a seasonal cycle plus
noise per station and variable); the variables, units, heights and positions are those
the region's harvest stored for the same stations, so the poll meets the same series.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.series import SeriesTable
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable

#: Written once and reused by later runs while its description matches.
MARKER = "BUILT.json"
SERIES_PER_WRITE = 700


def _series(region_lake: Path, dataset_id: str) -> pa.Table:
    """The region's series (station, variable, z, units, position), one row each."""
    state = SeriesTable(Storage.from_settings(Settings(root=str(region_lake)))).read()
    state = state.filter(pc.equal(state.column("dataset_id"), dataset_id))
    if state.num_rows == 0:
        raise RuntimeError(f"the region lake at {region_lake} holds no series of {dataset_id}")
    return state.select(["station_id", "variable", "z", "units", "lon", "lat"]).sort_by(
        [("station_id", "ascending"), ("variable", "ascending")]
    )


def _month_rows(series: pa.Table, dataset_id: str, month: np.datetime64) -> pa.Table:
    """Every series' 10-minute values for one month, sorted by station and time."""
    start = month.astype("datetime64[m]")
    stop = (month + np.timedelta64(1, "M")).astype("datetime64[M]").astype("datetime64[m]")
    times = np.arange(start, stop, np.timedelta64(10, "m")).astype("datetime64[us]")
    n_times, n_series = len(times), series.num_rows
    rng = np.random.default_rng(int(month.astype("int64")))
    day = (times - times[0]).astype("timedelta64[s]").astype("float64") / 86400.0
    seasonal = np.sin(2 * np.pi * (month.astype("int64") % 12 + day / 30.0) / 12.0)
    values = 10.0 + 5.0 * seasonal[None, :] + rng.normal(0.0, 0.5, (n_series, n_times))

    index = pa.array(np.repeat(np.arange(n_series), n_times))
    n = n_series * n_times

    def repeat(column: str) -> pa.ChunkedArray:
        return series.column(column).take(index)

    return pa.table(
        {
            "dataset_id": pa.repeat(pa.scalar(dataset_id), n),
            "station_id": repeat("station_id"),
            "variable": repeat("variable"),
            "z": repeat("z"),
            "units": repeat("units"),
            "lon": repeat("lon"),
            "lat": repeat("lat"),
            "time": pa.array(np.tile(times, n_series), pa.timestamp("us")),
            "value": pa.array(values.ravel()),
            "qc_agg": pa.array(np.ones(n, dtype="int8")),
        }
    )


def build_big_lake(
    path: Path, region_lake: Path, dataset_id: str, years: list[int]
) -> dict[str, Any]:
    """The big lake at `path` (built now, or reused if a previous run built the same)."""
    marker = path / MARKER
    wanted = {"dataset_id": dataset_id, "years": years, "format": 1}
    if marker.exists():
        built = json.loads(marker.read_text())
        if {k: built.get(k) for k in wanted} == wanted:
            return {**built, "reused": True}
    shutil.rmtree(path, ignore_errors=True)
    storage = Storage.from_settings(Settings(root=str(path)))
    table, state = ObservationTable(storage), SeriesTable(storage)
    table.create()
    series = _series(region_lake, dataset_id)
    started, values = time.perf_counter(), 0
    for year in years:
        for m in range(12):
            month = np.datetime64(f"{year}-{m + 1:02d}", "M")
            # A few hundred series at a time: a month of all of them is 8 M rows, and the
            # sort before writing would hold several copies of it.
            for first in range(0, series.num_rows, SERIES_PER_WRITE):
                rows = _month_rows(series.slice(first, SERIES_PER_WRITE), dataset_id, month)
                table.write(rows, unique_keys=True, all_new=True)
                state.update(rows)
                values += rows.num_rows
            print(
                f"  [big lake] {year}-{m + 1:02d}: {values / 1e6:,.1f} M values "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    built = {**wanted, "values": values, "build_s": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(built))
    return {**built, "reused": False}
