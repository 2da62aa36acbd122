"""Which QARTOD tests run on a series and with what thresholds.

Thresholds come from three layers, later ones winning: the gross-range table shipped in
`qc/thresholds.yaml` (by CF standard name), the stream's `qc.tests` in the registry, and the
station's entry in `qc.stations`. Adding a QC rule is editing data, never code.

Registry shape (both `qc.tests` and `qc.stations.<station>` use it)::

    qc:
      tests:
        gross_range:                       # test name
          sea_water_temperature:           # a CF standard name: thresholds for that variable
            fail_span: [-2, 35]
        spike: {enabled: false}            # plain keys apply to every variable
        flat_line: {interval: 1h}          # pin the sampling interval (see SeriesPlan)
        neighbor:
          stations: ["urn:ioos:station:wmo:44029"]
          sea_water_temperature: {suspect_threshold: 2, fail_threshold: 5}
      stations:
        "44013": {gross_range: {sea_water_temperature: {suspect_span: [0, 25]}}}
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from lake.errors import ConfigError
from lake.registry import Category, Stream, parse_duration
from lake.tables import QC_TESTS

log = logging.getLogger(__name__)

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yaml"

#: Tests whose thresholds live in the table by variable; the others need no table entry.
TABLE_TESTS = ("gross_range", "spike", "rate_of_change", "flat_line")
#: Tests that look at earlier (and for spike, later) values of the same series.
WINDOWED_TESTS = ("timing_gap", "location", "spike", "rate_of_change", "flat_line")
#: What each data category runs (R12). Federal streams keep their provider's flags.
CATEGORY_TESTS: dict[Category, tuple[str, ...]] = {
    Category.federal: ("syntax",),
    Category.model: ("syntax", "timing_gap"),
    Category.static: ("syntax",),
    Category.funded: QC_TESTS,
    Category.regional: QC_TESTS,
}


@lru_cache(maxsize=4)
def _load_table(path: str) -> dict[str, dict[str, Any]]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the QC threshold table: {exc}", file=path) from None
    variables = raw.get("variables") if isinstance(raw, dict) else None
    if not isinstance(variables, dict):
        raise ConfigError("expected a mapping 'variables:' of CF standard names", file=path)
    for name, entry in variables.items():
        for test in TABLE_TESTS:
            if test in entry and test not in (entry.get("source") or {}) and test != "gross_range":
                raise ConfigError(f"{name}.{test} has no source beside it", file=path)
        if "gross_range" in entry:
            src = entry.get("source") or {}
            if "fail_span" not in src or "suspect_span" not in src:
                raise ConfigError(f"{name}.gross_range needs a source for each span", file=path)
    return variables


def threshold_table(path: str | Path = THRESHOLDS_FILE) -> dict[str, dict[str, Any]]:
    """The gross-range (and spike, rate, flat-line) table by CF standard name, with sources."""
    return copy.deepcopy(_load_table(str(path)))


@dataclass(frozen=True)
class SeriesPlan:
    """The tests of one station-variable series and their ioos_qc keyword arguments.

    A test absent from `tests` is not run and its flag column says 2 (not evaluated).
    `flat_line_interval_s` pins the sampling interval ioos_qc uses to turn the flat-line
    thresholds (seconds) into a number of points: ioos_qc takes the median interval of the
    array it is given, so the same value could get a different flag in a small real-time
    batch than in a whole history. Pinning it makes both paths agree.
    """

    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    flat_line_interval_s: float = 3600.0
    neighbors: tuple[str, ...] = ()
    keep_provider_flags: bool = False

    def window_points(self) -> int:
        """How many neighbouring points a value's flags depend on (each side), at most."""
        points = 2
        flat = self.tests.get("flat_line")
        if flat:
            longest = max(float(flat["suspect_threshold"]), float(flat["fail_threshold"]))
            points = max(points, int(longest / self.flat_line_interval_s) + 2)
        return points


def _station_entry(stream: Stream, station_id: str) -> Mapping[str, Any]:
    stations = stream.qc.stations
    short = station_id.rsplit(":", 1)[-1]
    return stations.get(station_id) or stations.get(short) or {}


def _layer(params: Mapping[str, Any] | None, variable: str) -> dict[str, Any]:
    """Shared params of a test plus the ones given for `variable`."""
    if not params:
        return {}
    out = {k: v for k, v in params.items() if not isinstance(v, Mapping)}
    specific = params.get(variable)
    if isinstance(specific, Mapping):
        out.update(specific)
    return out


def _spans(params: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if params.get(key) is not None:
            params[key] = tuple(float(x) for x in params[key])


def plan_for(
    stream: Stream,
    station_id: str,
    variable: str,
    table: Mapping[str, Mapping[str, Any]] | None = None,
) -> SeriesPlan:
    """The tests and thresholds for one series of `stream`, after every override.

    A test that needs thresholds the table and registry do not give is left out (flag 2),
    with a DEBUG line saying so. Raises ConfigError naming the stream and test when a
    threshold in the registry cannot be used.
    """
    table = threshold_table() if table is None else table
    category_tests = CATEGORY_TESTS[stream.category]
    if stream.category is Category.federal and stream.qc.retest_provider:
        category_tests = QC_TESTS
    station = _station_entry(stream, station_id)
    defaults = table.get(variable, {})
    interval = stream.cadence
    tests: dict[str, dict[str, Any]] = {}
    neighbors: tuple[str, ...] = ()
    for test in QC_TESTS:
        params: dict[str, Any] = {}
        if test in TABLE_TESTS and isinstance(defaults.get(test), Mapping):
            params.update(defaults[test])
        params.update(_layer(stream.qc.tests.get(test), variable))
        params.update(_layer(station.get(test), variable))
        enabled = params.pop("enabled", None)
        if enabled is False or (enabled is None and test not in category_tests):
            continue
        try:
            if test == "flat_line" and "interval" in params:
                interval = parse_duration(params.pop("interval"))
            if test == "neighbor":
                neighbors = tuple(str(s) for s in params.pop("stations", []) or [])
                if not neighbors:
                    continue
            prepared = _prepare(test, params, stream)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"qc.{test} for {variable} at {station_id}: {exc}", stream=stream.id
            ) from None
        if prepared is None:
            log.debug("stream=%s %s %s: %s lacks thresholds", stream.id, station_id, variable, test)
            continue
        tests[test] = prepared
    return SeriesPlan(
        tests=tests,
        flat_line_interval_s=_seconds(interval),
        neighbors=neighbors,
        keep_provider_flags=stream.category is Category.federal,
    )


def _seconds(interval: timedelta) -> float:
    seconds = interval.total_seconds()
    if seconds <= 0:
        raise ConfigError("the flat-line sampling interval must be positive")
    return seconds


def _prepare(test: str, params: dict[str, Any], stream: Stream) -> dict[str, Any] | None:
    """Keyword arguments for the ioos_qc call, or None if the test lacks its thresholds."""
    if test == "syntax":
        return {}
    if test == "timing_gap":
        # ioos_qc time_gap_test takes hours; default: three missed reports in a row.
        span = params.get("fail_span")
        hours = (
            parse_duration(span).total_seconds() / 3600
            if isinstance(span, str)
            else float(span)
            if span is not None
            else 3 * stream.cadence.total_seconds() / 3600
        )
        return {"fail_span": hours}
    if test == "location":
        out: dict[str, Any] = {}
        if params.get("range_max") is not None:
            out["range_max"] = float(params["range_max"])
        if params.get("bbox") is not None:
            out["bbox"] = tuple(float(x) for x in params["bbox"])
        return out
    if test == "gross_range":
        if params.get("fail_span") is None:
            return None
        _spans(params, ("fail_span", "suspect_span"))
        fail, suspect = params["fail_span"], params.get("suspect_span")
        if suspect is not None and not (fail[0] <= suspect[0] <= suspect[1] <= fail[1]):
            raise ValueError(f"suspect_span {suspect} must lie within fail_span {fail}")
        return {"fail_span": params["fail_span"], "suspect_span": params.get("suspect_span")}
    if test == "climatology":
        return {"fspan": tuple(float(x) for x in params["fspan"])} if "fspan" in params else {}
    if test == "spike":
        if params.get("suspect_threshold") is None:
            return None
        return {
            "suspect_threshold": float(params["suspect_threshold"]),
            "fail_threshold": float(params.get("fail_threshold") or params["suspect_threshold"]),
            "method": str(params.get("method", "average")),
        }
    if test == "rate_of_change":
        if params.get("threshold") is None:
            return None
        out = {"threshold": float(params["threshold"])}
        if params.get("fail_threshold") is not None:
            out["fail_threshold"] = float(params["fail_threshold"])
        return out
    if test == "flat_line":
        if params.get("suspect_threshold") is None or params.get("fail_threshold") is None:
            return None
        return {
            "suspect_threshold": float(params["suspect_threshold"]),
            "fail_threshold": float(params["fail_threshold"]),
            "tolerance": float(params.get("tolerance", 0.0)),
        }
    if test == "neighbor":
        if params.get("suspect_threshold") is None:
            return None
        return {
            "suspect_threshold": float(params["suspect_threshold"]),
            "fail_threshold": float(params.get("fail_threshold") or params["suspect_threshold"]),
            "max_time_diff_s": parse_duration(params.get("max_time_diff", "1h")).total_seconds(),
        }
    raise ValueError(f"unknown test {test!r}")
