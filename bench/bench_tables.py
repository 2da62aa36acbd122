"""The observation table against what a user would otherwise do: per-station NetCDF files
read with xarray, and per-station CSV files read with pandas.

Measures, side by side in one run: write throughput; one station-month of 10 variables;
a regional daily mean of one variable over all stations for the whole span (a year by
default). BENCH_DAYS and BENCH_STATIONS shrink the network for a quick run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

import numpy as np
import pandas as pd
import xarray as xr

from bench.common import WORK, Result, timed
from bench.synthetic import VARIABLES, Network, long_rows, station_frames
from lake.reader import Lake
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable

log = logging.getLogger(__name__)
VAR = "sea_water_temperature"


def _network() -> Network:
    return Network(
        stations=int(os.environ.get("BENCH_STATIONS", 200)),
        days=int(os.environ.get("BENCH_DAYS", 365)),
    )


def build(net: Network) -> dict[str, float]:
    """Write the same network three ways; returns seconds per way and the row count."""
    shutil.rmtree(WORK / "tables", ignore_errors=True)
    nc_dir, csv_dir = WORK / "tables" / "netcdf", WORK / "tables" / "csv"
    nc_dir.mkdir(parents=True)
    csv_dir.mkdir(parents=True)
    table = ObservationTable(Storage.from_settings(Settings(root=str(WORK / "tables" / "lake"))))
    table.create()
    rows = 0
    lake_s = 0.0
    chunk = 10
    for first in range(0, net.stations, chunk):
        batch = long_rows(net, range(first, min(first + chunk, net.stations)))
        rows += batch.num_rows
        start = time.perf_counter()
        table.append(batch)
        lake_s += time.perf_counter() - start
        print(f"    lake: {first + chunk}/{net.stations} stations, {rows:,} rows", flush=True)
    start = time.perf_counter()
    table.compact(min_files=2)
    compact_s = time.perf_counter() - start
    nc_s = csv_s = 0.0
    for i, frame in station_frames(net):
        ds = xr.Dataset.from_dataframe(frame)
        for name, (units, _, _) in VARIABLES.items():
            ds[name].attrs.update(units=units, standard_name=name)
        start = time.perf_counter()
        ds.to_netcdf(
            nc_dir / f"st{i:03d}.nc",
            encoding={v: {"zlib": True, "complevel": 1} for v in VARIABLES},
        )
        nc_s += time.perf_counter() - start
        start = time.perf_counter()
        frame.to_csv(csv_dir / f"st{i:03d}.csv", float_format="%.4f")
        csv_s += time.perf_counter() - start
    return {"rows": rows, "lake_s": lake_s, "compact_s": compact_s, "nc_s": nc_s, "csv_s": csv_s}


def run() -> list[Result]:
    net = _network()
    print(
        f"  building {net.stations} stations x {len(VARIABLES)} variables x {net.days} days "
        "of 6-minute data",
        flush=True,
    )
    built = build(net)
    rows = int(built["rows"])
    lk = Lake.open(str(WORK / "tables" / "lake"))
    nc_dir, csv_dir = WORK / "tables" / "netcdf", WORK / "tables" / "csv"
    results = [
        Result(
            "write throughput (rows/s in detail)",
            "per-station NetCDF via xarray",
            built["lake_s"],
            built["nc_s"],
            rows,
            {
                "lake_rows_per_s": rows / built["lake_s"],
                "netcdf_rows_per_s": rows / built["nc_s"],
                "compaction_s": built["compact_s"],
            },
        ),
        Result(
            "write throughput (rows/s in detail)",
            "per-station CSV via pandas",
            built["lake_s"],
            built["csv_s"],
            rows,
            {"lake_rows_per_s": rows / built["lake_s"], "csv_rows_per_s": rows / built["csv_s"]},
        ),
    ]

    # One station-month of all 10 variables.
    station = net.station_ids()[7]
    month = np.datetime64(net.start) + np.timedelta64(min(net.days, 60) // 2, "D")
    start, end = pd.Timestamp(month), pd.Timestamp(month) + pd.Timedelta(days=30)

    def lake_sql_month():
        return lk.sql(
            "SELECT time, variable, value FROM observations WHERE station_id = ? "
            "AND time >= ? AND time < ?",
            [station, start, end],
        )

    def lake_series_month():
        return lk.series("bench-network", station, start=start, end=end)

    def netcdf_month():
        with xr.open_dataset(nc_dir / "st007.nc") as ds:
            return ds.sel(time=slice(start, end - pd.Timedelta(seconds=1))).load()

    def csv_month():
        frame = pd.read_csv(csv_dir / "st007.csv", index_col="time", parse_dates=["time"])
        return frame.loc[start : end - pd.Timedelta(seconds=1)]

    lake_sql_month()  # warm the connection, as a notebook would be
    ours_s, got = timed(lake_sql_month)
    series_s, _ds = timed(lake_series_month)
    nc_s, ref = timed(netcdf_month)
    csv_s, _ref_csv = timed(csv_month, repeat=3)
    assert got.num_rows == int(ref.to_dataframe().notna().sum().sum())
    detail = {"lake_series_xarray_s": series_s, "values": got.num_rows}
    results.append(
        Result(
            "station-month, 10 variables (DuckDB SQL)",
            "per-station NetCDF via xarray",
            ours_s,
            nc_s,
            got.num_rows,
            detail,
        )
    )
    results.append(
        Result(
            "station-month, 10 variables (DuckDB SQL)",
            "per-station CSV via pandas",
            ours_s,
            csv_s,
            got.num_rows,
            detail,
        )
    )
    results.append(
        Result(
            "station-month, 10 variables (Lake.series -> xarray)",
            "per-station NetCDF via xarray",
            series_s,
            nc_s,
            got.num_rows,
        )
    )

    # Regional daily mean of one variable over all stations, the whole span.
    def lake_daily():
        return lk.sql(
            "SELECT date_trunc('day', time) AS day, avg(value) AS mean "
            "FROM observations WHERE variable = ? GROUP BY day ORDER BY day",
            [VAR],
        )

    def netcdf_daily():
        sums = None
        for i in range(net.stations):
            with xr.open_dataset(nc_dir / f"st{i:03d}.nc") as ds:
                series = ds[VAR].to_series()
            grouped = series.groupby(series.index.floor("D")).agg(["sum", "count"])
            sums = grouped if sums is None else sums.add(grouped, fill_value=0)
        return sums["sum"] / sums["count"]

    def csv_daily():
        sums = None
        for i in range(net.stations):
            frame = pd.read_csv(
                csv_dir / f"st{i:03d}.csv", usecols=["time", VAR], parse_dates=["time"]
            )
            grouped = frame.groupby(frame["time"].dt.floor("D"))[VAR].agg(["sum", "count"])
            sums = grouped if sums is None else sums.add(grouped, fill_value=0)
        return sums["sum"] / sums["count"]

    ours_s, daily = timed(lake_daily, repeat=3)
    nc_s, ref_daily = timed(netcdf_daily, repeat=1)
    csv_s, _ = timed(csv_daily, repeat=1)
    assert np.allclose(daily.column("mean").to_numpy(), ref_daily.to_numpy())
    span = f"{net.days} days"
    results.append(
        Result(
            f"regional daily mean, 1 variable, {net.stations} stations, {span}",
            "per-station NetCDF via xarray",
            ours_s,
            nc_s,
            rows // len(VARIABLES),
        )
    )
    results.append(
        Result(
            f"regional daily mean, 1 variable, {net.stations} stations, {span}",
            "per-station CSV via pandas",
            ours_s,
            csv_s,
            rows // len(VARIABLES),
        )
    )
    lk.close()
    return results
