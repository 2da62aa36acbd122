"""QC throughput: our runner (`qc.runner.flag_table` on an Arrow table of long rows) against
ioos_qc called directly on numpy arrays, series by series, per test and for the whole suite.

Data: the real ioos_qc test series (tests/data/qc/20363_1000427.csv.gz, 89,717 values) as
224 stations (station i adds 0.01 * i to every value) = 20,096,608 values. Both sides flag
the same series with the same thresholds; the baseline gets the arrays already split per
series (what a user calling ioos_qc by hand would hold), ours starts from the table.
ratio = baseline_s / ours_s: below 1 is our overhead (sorting, grouping, Arrow <-> numpy).

Run: .venv/bin/python -m bench qc   (BENCH_QC_STATIONS=20 for a quick look)
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ioos_qc import qartod

from bench.common import Result
from qc.config import SeriesPlan
from qc.runner import flag_table, run_series

log = logging.getLogger(__name__)

SOURCE = "tests/data/qc/20363_1000427.csv.gz"
STATIONS = int(os.environ.get("BENCH_QC_STATIONS", "224"))
INTERVAL_S = 900.0
TESTS: dict[str, dict[str, Any]] = {
    "timing_gap": {"fail_span": 2.0},
    "location": {},
    "gross_range": {"fail_span": (0.5, 2500.0), "suspect_span": (10.0, 2000.0)},
    "spike": {"suspect_threshold": 300.0, "fail_threshold": 800.0, "method": "average"},
    "rate_of_change": {"threshold": 0.1, "fail_threshold": 0.25},
    "flat_line": {"suspect_threshold": 10800.0, "fail_threshold": 21600.0, "tolerance": 1.0},
}


def _series() -> tuple[np.ndarray, np.ndarray, float, float]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame = pd.read_csv(os.path.join(root, SOURCE))
    t = pd.to_datetime(frame["time"], utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")
    return (
        t,
        frame["value"].to_numpy(np.float64),
        float(frame["longitude"][0]),
        float(frame["latitude"][0]),
    )


def _table(t: np.ndarray, v: np.ndarray, lon: float, lat: float) -> pa.Table:
    n = len(v)
    total = n * STATIONS
    station_idx = np.repeat(np.arange(STATIONS, dtype=np.int32), n)
    names = pa.array([f"urn:ioos:station:bench:{i:04d}" for i in range(STATIONS)])
    stations = pc.cast(pa.DictionaryArray.from_arrays(pa.array(station_idx), names), pa.string())
    values = np.tile(v, STATIONS) + np.repeat(np.arange(STATIONS) * 0.01, n)
    return pa.table(
        {
            "dataset_id": pa.array(np.full(total, "bench", dtype=object), pa.string()),
            "station_id": stations,
            "time": pa.array(np.tile(t, STATIONS).astype("datetime64[us]")),
            "z": pa.array(np.zeros(total)),
            "lon": pa.array(np.full(total, lon)),
            "lat": pa.array(np.full(total, lat)),
            "variable": pa.array(np.full(total, "bench_parameter", dtype=object), pa.string()),
            "value": pa.array(values),
        }
    )


def _direct(
    test: str, t: np.ndarray, v: np.ndarray, lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    p = TESTS[test]
    if test == "timing_gap":
        return qartod.time_gap_test(tinp=t, **p)
    if test == "location":
        return qartod.location_test(lon=lon, lat=lat)
    if test == "gross_range":
        return qartod.gross_range_test(inp=v, **p)
    if test == "spike":
        return qartod.spike_test(inp=v, **p)
    if test == "rate_of_change":
        return qartod.rate_of_change_test(inp=v, tinp=t, **p)
    return qartod.flat_line_test(inp=v, tinp=t, **p)


def run() -> list[Result]:
    t, v, lon0, lat0 = _series()
    table = _table(t, v, lon0, lat0)
    total = table.num_rows
    lon = np.full(len(v), lon0)
    lat = np.full(len(v), lat0)
    per_station = [v + i * 0.01 for i in range(STATIONS)]
    print(f"  {total:,} values in {STATIONS} series of {len(v):,}", flush=True)
    results: list[Result] = []
    suites = [(name, (name,)) for name in TESTS] + [("suite", tuple(TESTS))]
    for name, tests in suites:
        plan = SeriesPlan(
            tests={"syntax": {}, **{k: dict(TESTS[k]) for k in tests}},
            flat_line_interval_s=INTERVAL_S,
        )
        gc.collect()
        start = time.perf_counter()
        out = flag_table(table, functools.partial(_same_plan, plan))
        ours = time.perf_counter() - start
        assert out.num_rows == total
        del out
        gc.collect()
        start = time.perf_counter()
        for values in per_station:
            flags = [_direct(test, t, values, lon, lat) for test in tests]
            if name == "suite":  # ours aggregates too
                qartod.qartod_compare([np.ones(len(values), np.uint8), *flags])
        baseline = time.perf_counter() - start
        in_memory = None
        if name == "suite":  # our per-series function alone, without the table around it
            start = time.perf_counter()
            for values in per_station:
                run_series(t, values, lon, lat, plan)
            in_memory = time.perf_counter() - start
        detail: dict[str, Any] = {
            "values": total,
            "series": STATIONS,
            "ours_values_per_s": round(total / ours),
            "baseline_values_per_s": round(total / baseline),
            "overhead": round(ours / baseline, 3),
        }
        if in_memory is not None:
            detail["run_series_numpy_s"] = round(in_memory, 3)
        results.append(
            Result(
                name=f"qc_{name}",
                baseline="ioos_qc.qartod on numpy arrays per series",
                ours_s=round(ours, 3),
                baseline_s=round(baseline, 3),
                rows=total,
                detail=detail,
            )
        )
        print(
            f"  {name}: ours {ours:.2f}s ({total / ours:,.0f} values/s), ioos_qc direct "
            f"{baseline:.2f}s ({total / baseline:,.0f} values/s)",
            flush=True,
        )
    return results


def _same_plan(plan: Any, key: Any) -> Any:
    """Every series of the benchmark uses one plan."""
    return plan
