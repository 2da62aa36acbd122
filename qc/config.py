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
from lake.registry import Category, Stream
from qc.catalogue import CATALOGUE, TABLE_TESTS, TEST_NAMES, PlanSettings
from qc.catalogue import WINDOWED_TESTS as WINDOWED_TESTS  # re-exported for qc.on_write

log = logging.getLogger(__name__)

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yaml"

#: What each data category runs. Gross range runs on every stream (its limits come from the
#: threshold table), so no value is called good without a test that looked at it; every
#: stream's provider flags enter the aggregate through `qc.provider_flags`.
CATEGORY_TESTS: dict[Category, tuple[str, ...]] = {
    Category.federal: ("syntax", "gross_range"),
    Category.model: ("syntax", "timing_gap", "gross_range"),
    Category.static: ("syntax", "gross_range"),
    Category.funded: TEST_NAMES,
    Category.regional: TEST_NAMES,
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
    keep_provider_flags: bool = True
    #: The stream's source kind: which provider table reads its flags.
    provider_kind: str = ""

    def window_points(self) -> int:
        """How many neighbouring points a value's flags depend on (each side), at most."""
        points = 2
        for name, params in self.tests.items():
            window = CATALOGUE[name].window
            if window is not None:
                points = max(points, window(params, self.flat_line_interval_s))
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


def plan_for(
    stream: Stream,
    station_id: str,
    variable: str,
    table: Mapping[str, Mapping[str, Any]] | None = None,
) -> SeriesPlan:
    """The tests and thresholds for one series of `stream`, after every override.

    A test that needs thresholds (or, for the neighbour test, stations) that the table and
    registry do not give is left out (flag 2), with a DEBUG line saying so. Raises
    ConfigError naming the stream and test when a threshold in the registry cannot be used.
    """
    table = threshold_table() if table is None else table
    category_tests = CATEGORY_TESTS[stream.category]
    if stream.category is Category.federal and stream.qc.retest_provider:
        category_tests = TEST_NAMES
    station = _station_entry(stream, station_id)
    defaults = table.get(variable, {})
    settings = PlanSettings(stream=stream, interval=stream.cadence)
    tests: dict[str, dict[str, Any]] = {}
    for test in CATALOGUE.values():
        params: dict[str, Any] = {}
        if test.in_threshold_table and isinstance(defaults.get(test.name), Mapping):
            params.update(defaults[test.name])
        params.update(_layer(stream.qc.tests.get(test.name), variable))
        params.update(_layer(station.get(test.name), variable))
        enabled = params.pop("enabled", None)
        if enabled is False or (enabled is None and test.name not in category_tests):
            continue
        try:
            prepared = test.prepare(params, settings)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"qc.{test.name} for {variable} at {station_id}: {exc}", stream=stream.id
            ) from None
        if prepared is None:
            log.debug(
                "stream=%s %s %s: %s lacks thresholds or neighbour stations",
                stream.id,
                station_id,
                variable,
                test.name,
            )
            continue
        tests[test.name] = prepared
    return SeriesPlan(
        tests=tests,
        flat_line_interval_s=_seconds(settings.interval),
        neighbors=settings.neighbors,
        keep_provider_flags=True,
        provider_kind=stream.source.kind,
    )


def _seconds(interval: timedelta) -> float:
    seconds = interval.total_seconds()
    if seconds <= 0:
        raise ConfigError("the flat-line sampling interval must be positive")
    return seconds
