"""The table of QARTOD tests: one entry per test, one flag column per entry."""

from __future__ import annotations

import numpy as np
import pytest

from lake.tables import OBSERVATION_SCHEMA, QC_COLUMNS
from qc.catalogue import CATALOGUE, TABLE_TESTS, WINDOWED_TESTS, qc_test
from qc.config import SeriesPlan, plan_for, threshold_table
from qc.runner import run_series
from tests.qc.support import make_stream


def test_every_test_has_its_column_and_every_column_its_test() -> None:
    """Adding a test is its entry here plus its `qc_<name>` column in lake.tables."""
    tests = {t.column for t in CATALOGUE.values()}
    columns = set(QC_COLUMNS)
    assert tests - columns == set(), "tests without a column in lake.tables.QC_TESTS"
    assert columns - tests == set(), "flag columns without a test in qc.catalogue.CATALOGUE"
    assert all(name == t.name for name, t in CATALOGUE.items())
    for column in QC_COLUMNS:
        assert OBSERVATION_SCHEMA.field(column).nullable, column  # an old lake can gain it


def test_sets_of_tests_come_from_the_table() -> None:
    assert WINDOWED_TESTS == ("timing_gap", "location", "spike", "rate_of_change", "flat_line")
    assert TABLE_TESTS == ("gross_range", "spike", "rate_of_change", "flat_line")
    table = threshold_table()
    for name in TABLE_TESTS:
        assert any(name in entry for entry in table.values()), name


def test_unknown_test_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown QC test 'wobble'.*gross_range"):
        qc_test("wobble")


def test_every_test_runs_and_fills_its_column() -> None:
    n = 48
    time = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(1, "h")
    value = 10 + np.sin(np.arange(n) / 4)
    value[20] = 80.0
    plan = SeriesPlan(
        tests={
            "syntax": {},
            "timing_gap": {"fail_span": 3.0},
            "location": {"range_max": 1000.0},
            "gross_range": {"fail_span": (-5.0, 40.0), "suspect_span": (0.0, 30.0)},
            "climatology": {},
            "spike": {"suspect_threshold": 3.0, "fail_threshold": 6.0, "method": "average"},
            "rate_of_change": {"threshold": 0.001},
            "flat_line": {"suspect_threshold": 10800.0, "fail_threshold": 21600.0, "tolerance": 0},
            "neighbor": {"suspect_threshold": 1.0, "fail_threshold": 5.0, "max_time_diff_s": 3600},
        }
    )
    flags = run_series(time, value, np.full(n, -70.0), np.full(n, 42.0), plan, neighbor=value - 0.5)
    assert set(flags) == {*QC_COLUMNS, "qc_agg"}
    assert flags["qc_gross_range"][20] == 4 and flags["qc_spike"][20] in (3, 4)
    assert set(flags["qc_climatology"].tolist()) == {2}  # no monthly ranges given
    assert set(flags["qc_neighbor"].tolist()) == {1}
    assert all(len(f) == n and f.dtype == np.int8 for f in flags.values())
    # Flat line of 6 h at 1 h sampling: 6 points plus the two every windowed test needs.
    assert plan.window_points() == 8
    assert SeriesPlan(tests={"syntax": {}}).window_points() == 2


def test_plan_level_settings_hold_even_when_a_test_is_left_out() -> None:
    """The flat-line interval and the neighbour stations belong to the whole plan: they are
    kept when the test itself lacks thresholds, as before tests were a table."""
    stream = make_stream(
        tests={"flat_line": {"interval": "30min"}, "neighbor": {"stations": ["44029"]}}
    )
    plan = plan_for(stream, "urn:x", "no_such_variable")
    assert "flat_line" not in plan.tests and plan.flat_line_interval_s == 1800.0
    assert "neighbor" not in plan.tests and plan.neighbors == ("44029",)
    alone = plan_for(make_stream(tests={"neighbor": {"suspect_threshold": 1}}), "urn:x", "v")
    assert "neighbor" not in alone.tests and alone.neighbors == ()  # no stations: not run
