"""The QARTOD tests we run, one record each: how its arguments are prepared and how it runs.

ioos_qc resolves its tests by name; so do we. `qc.config` prepares each test's keyword
arguments from the threshold table and the registry with `QcTest.prepare`, and `qc.runner`
flags a series with `QcTest.run`. Adding a test is one entry in `CATALOGUE` plus its
`qc_<name>` column in `lake.tables.QC_TESTS` (a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
from ioos_qc import qartod

from lake.flags import MISSING, NOT_EVALUATED, PASS
from lake.registry import Stream, parse_duration


@dataclass(frozen=True, slots=True)
class MonthRange:
    """Expected range of a variable in one calendar month at one station (climatology)."""

    month: int
    vmin: float
    vmax: float


@dataclass(frozen=True, slots=True)
class Series:
    """One time-sorted series, and what a test may look at besides its values.

    `time` is datetime64[ns] (UTC). `interval_s` is the pinned sampling interval (see
    `qc.config.SeriesPlan`). `neighbor` holds the neighbouring stations' value at each time
    (NaN where they have none), or None when no neighbour values were looked up.
    """

    time: np.ndarray
    value: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    interval_s: float
    climatology: Sequence[MonthRange] = ()
    neighbor: np.ndarray | None = None


@dataclass(slots=True)
class PlanSettings:
    """Series-wide settings that a test's registry entry may change while it is prepared.

    Mutable on purpose: `qc.config.plan_for` makes one per series, lets each test's
    `prepare` set what belongs to the whole plan (the flat-line sampling interval, the
    neighbour stations), then copies it into the frozen SeriesPlan.
    """

    stream: Stream
    interval: timedelta
    neighbors: tuple[str, ...] = ()


Prepare = Callable[[dict[str, Any], PlanSettings], "dict[str, Any] | None"]
Run = Callable[[Mapping[str, Any], Series], np.ndarray]
Window = Callable[[Mapping[str, Any], float], int]


@dataclass(frozen=True, slots=True)
class QcTest:
    """One QARTOD test.

    `prepare(params, settings)` turns the merged table/registry params into the test's
    keyword arguments, or None when thresholds it needs are missing (then it is not run:
    flag 2); it raises TypeError or ValueError for a threshold it cannot use. `run(kwargs,
    series)` returns one int8 flag per value. `window(kwargs, interval_s)` says how many
    neighbouring points in time (each side) a flag depends on, so a real-time batch is run
    with that many stored values around it; None for a test that looks at each value alone.
    `in_threshold_table` says its defaults come from `qc/thresholds.yaml` by CF name.
    """

    name: str
    prepare: Prepare
    run: Run
    window: Window | None = None
    in_threshold_table: bool = False

    @property
    def windowed(self) -> bool:
        return self.window is not None

    @property
    def column(self) -> str:
        return f"qc_{self.name}"


def flags_of(result: np.ndarray) -> np.ndarray:
    """ioos_qc's (possibly masked) flags as int8, masked values as MISSING."""
    return np.asarray(np.ma.filled(result, MISSING), dtype=np.int8)


def _spans(params: dict[str, Any], *keys: str) -> None:
    # Spans given as lists in YAML become tuples of floats, as ioos_qc expects.
    for key in keys:
        if params.get(key) is not None:
            params[key] = tuple(float(x) for x in params[key])


def _two_points(params: Mapping[str, Any], interval_s: float) -> int:
    # The test compares a value with its previous (and, for spike, next) one.
    return 2


# -- how each test's keyword arguments are prepared ------------------------------------------


def _prepare_syntax(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    return {}


def _prepare_timing_gap(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    # ioos_qc time_gap_test takes hours; default: three missed reports in a row.
    span = params.get("fail_span")
    hours = (
        parse_duration(span).total_seconds() / 3600
        if isinstance(span, str)
        else float(span)
        if span is not None
        else 3 * plan.stream.cadence.total_seconds() / 3600
    )
    return {"fail_span": hours}


def _prepare_location(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if params.get("range_max") is not None:
        out["range_max"] = float(params["range_max"])
    if params.get("bbox") is not None:
        out["bbox"] = tuple(float(x) for x in params["bbox"])
    return out


def _prepare_gross_range(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    if params.get("fail_span") is None:
        return None
    _spans(params, "fail_span", "suspect_span")
    fail, suspect = params["fail_span"], params.get("suspect_span")
    if suspect is not None and not (fail[0] <= suspect[0] <= suspect[1] <= fail[1]):
        raise ValueError(f"suspect_span {suspect} must lie within fail_span {fail}")
    return {"fail_span": params["fail_span"], "suspect_span": params.get("suspect_span")}


def _prepare_climatology(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    return {"fspan": tuple(float(x) for x in params["fspan"])} if "fspan" in params else {}


def _prepare_spike(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    if params.get("suspect_threshold") is None:
        return None
    return {
        "suspect_threshold": float(params["suspect_threshold"]),
        "fail_threshold": float(params.get("fail_threshold") or params["suspect_threshold"]),
        "method": str(params.get("method", "average")),
    }


def _prepare_rate_of_change(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    if params.get("threshold") is None:
        return None
    out = {"threshold": float(params["threshold"])}
    if params.get("fail_threshold") is not None:
        out["fail_threshold"] = float(params["fail_threshold"])
    return out


def _prepare_flat_line(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    # The interval pins the whole plan's sampling interval, even when thresholds are missing.
    if "interval" in params:
        plan.interval = parse_duration(params.pop("interval"))
    if params.get("suspect_threshold") is None or params.get("fail_threshold") is None:
        return None
    return {
        "suspect_threshold": float(params["suspect_threshold"]),
        "fail_threshold": float(params["fail_threshold"]),
        "tolerance": float(params.get("tolerance", 0.0)),
    }


def _prepare_neighbor(params: dict[str, Any], plan: PlanSettings) -> dict[str, Any] | None:
    # Without stations to compare with, the test has nothing to run on: not run.
    plan.neighbors = tuple(str(s) for s in params.pop("stations", []) or [])
    if not plan.neighbors or params.get("suspect_threshold") is None:
        return None
    return {
        "suspect_threshold": float(params["suspect_threshold"]),
        "fail_threshold": float(params.get("fail_threshold") or params["suspect_threshold"]),
        "max_time_diff_s": parse_duration(params.get("max_time_diff", "1h")).total_seconds(),
    }


# -- how each test runs through ioos_qc ---------------------------------------------------------


def _run_syntax(params: Mapping[str, Any], s: Series) -> np.ndarray:
    # Rows reach the table only after their response parsed: the syntax test passed.
    # A response that failed it is recorded in the harvest log, with no rows.
    return np.full(len(s.value), PASS, dtype=np.int8)


def _run_timing_gap(params: Mapping[str, Any], s: Series) -> np.ndarray:
    if len(s.value) < 2:
        return np.full(len(s.value), NOT_EVALUATED, dtype=np.int8)
    return flags_of(qartod.time_gap_test(tinp=s.time, fail_span=params["fail_span"]))


def _run_location(params: Mapping[str, Any], s: Series) -> np.ndarray:
    lon = np.asarray(s.lon, dtype=np.float64)
    lat = np.asarray(s.lat, dtype=np.float64)
    if np.isnan(lon).all() and np.isnan(lat).all():
        return np.full(len(s.value), NOT_EVALUATED, dtype=np.int8)
    kwargs = {"range_max": params["range_max"]} if "range_max" in params else {}
    flags = flags_of(qartod.location_test(lon=lon, lat=lat, **kwargs))
    if "bbox" in params:
        # A list of four numbers is ioos_qc's bbox form (min lon, min lat, max lon, max lat).
        bbox = [float(x) for x in params["bbox"]]
        inside = flags_of(qartod.location_bounds_test(lon=lon, lat=lat, shape=bbox))
        flags = np.asarray(qartod.qartod_compare([flags, inside]), dtype=np.int8)
    return flags


def _run_gross_range(params: Mapping[str, Any], s: Series) -> np.ndarray:
    return flags_of(qartod.gross_range_test(inp=s.value, **params))


def _run_climatology(params: Mapping[str, Any], s: Series) -> np.ndarray:
    n = len(s.value)
    if not s.climatology:
        return np.full(n, NOT_EVALUATED, dtype=np.int8)
    config = qartod.ClimatologyConfig()
    for m in s.climatology:
        config.add(
            tspan=(m.month, m.month),
            period="month",
            vspan=(m.vmin, m.vmax),
            fspan=params.get("fspan"),
        )
    return flags_of(
        qartod.climatology_test(config=config, inp=s.value, tinp=s.time, zinp=np.zeros(n))
    )


def _run_spike(params: Mapping[str, Any], s: Series) -> np.ndarray:
    return flags_of(qartod.spike_test(inp=s.value, **params))


def _run_rate_of_change(params: Mapping[str, Any], s: Series) -> np.ndarray:
    return flags_of(qartod.rate_of_change_test(inp=s.value, tinp=s.time, **params))


def _run_flat_line(params: Mapping[str, Any], s: Series) -> np.ndarray:
    # ioos_qc uses tinp only for the median sampling interval; a regular axis at the
    # pinned interval makes a batch and a whole history count the same points.
    step = np.timedelta64(int(s.interval_s * 1e9), "ns")
    regular = np.datetime64(0, "ns") + np.arange(len(s.value)) * step
    return flags_of(qartod.flat_line_test(inp=s.value, tinp=regular, **params))


def _flat_line_window(params: Mapping[str, Any], interval_s: float) -> int:
    longest = max(float(params["suspect_threshold"]), float(params["fail_threshold"]))
    return int(longest / interval_s) + 2


def _run_neighbor(params: Mapping[str, Any], s: Series) -> np.ndarray:
    # ioos_qc 3.0 has no neighbour test: the difference to the neighbours' mean goes through
    # the gross-range test with spans of plus or minus the thresholds.
    if s.neighbor is None:
        return np.full(len(s.value), NOT_EVALUATED, dtype=np.int8)
    diff = s.value - np.asarray(s.neighbor, dtype=np.float64)
    sus, fail = float(params["suspect_threshold"]), float(params["fail_threshold"])
    flags = flags_of(
        qartod.gross_range_test(inp=diff, fail_span=(-fail, fail), suspect_span=(-sus, sus))
    )
    flags[np.isnan(diff) & ~np.isnan(s.value)] = NOT_EVALUATED
    return flags


#: Every test, in the order the flag columns are listed and the tests are run.
CATALOGUE: Mapping[str, QcTest] = MappingProxyType(
    {
        t.name: t
        for t in (
            QcTest("syntax", _prepare_syntax, _run_syntax),
            QcTest("timing_gap", _prepare_timing_gap, _run_timing_gap, window=_two_points),
            QcTest("location", _prepare_location, _run_location, window=_two_points),
            QcTest("gross_range", _prepare_gross_range, _run_gross_range, in_threshold_table=True),
            QcTest("climatology", _prepare_climatology, _run_climatology),
            QcTest(
                "spike", _prepare_spike, _run_spike, window=_two_points, in_threshold_table=True
            ),
            QcTest(
                "rate_of_change",
                _prepare_rate_of_change,
                _run_rate_of_change,
                window=_two_points,
                in_threshold_table=True,
            ),
            QcTest(
                "flat_line",
                _prepare_flat_line,
                _run_flat_line,
                window=_flat_line_window,
                in_threshold_table=True,
            ),
            QcTest("neighbor", _prepare_neighbor, _run_neighbor),
        )
    }
)
TEST_NAMES: tuple[str, ...] = tuple(CATALOGUE)
#: Tests whose thresholds live in the threshold table by variable; the others need no entry.
TABLE_TESTS: tuple[str, ...] = tuple(t.name for t in CATALOGUE.values() if t.in_threshold_table)
#: Tests that look at earlier (and for spike, later) values of the same series.
WINDOWED_TESTS: tuple[str, ...] = tuple(t.name for t in CATALOGUE.values() if t.windowed)


def qc_test(name: str) -> QcTest:
    """The test called `name`. Raises ValueError listing the known tests for any other."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown QC test {name!r}; known: {', '.join(TEST_NAMES)}") from None


def run_test(name: str, params: Mapping[str, Any], series: Series) -> np.ndarray:
    """The int8 flags of test `name` on `series` (an empty array for an empty series)."""
    test = qc_test(name)
    if len(series.value) == 0:
        return np.zeros(0, dtype=np.int8)
    return test.run(params, series)
