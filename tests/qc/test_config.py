"""Thresholds from the table, the stream and the station; categories decide the path."""

from __future__ import annotations

import numpy as np
import pytest

from lake.errors import ConfigError
from lake.registry import load_registry
from qc.config import THRESHOLDS_FILE, plan_for, threshold_table
from qc.runner import run_series
from tests.conftest import REPO
from tests.qc.support import humboldt_rows, make_stream


def test_every_table_number_has_its_source() -> None:
    table = threshold_table()
    assert {"sea_water_temperature", "sea_water_practical_salinity", "wind_speed"} <= set(table)
    for name, entry in table.items():
        fail = entry["gross_range"]["fail_span"]
        suspect = entry["gross_range"]["suspect_span"]
        assert fail[0] <= suspect[0] <= suspect[1] <= fail[1], name
        for test in ("gross_range", "spike", "rate_of_change", "flat_line"):
            if test in entry:
                keys = ("fail_span", "suspect_span") if test == "gross_range" else (test,)
                assert all(entry["source"].get(k) for k in keys), (name, test)


def test_table_without_sources_is_refused(tmp_path) -> None:
    bad = tmp_path / "thresholds.yaml"
    bad.write_text(
        "variables:\n  sea_water_temperature:\n"
        "    gross_range: {fail_span: [-5, 40], suspect_span: [0, 30]}\n"
    )
    with pytest.raises(ConfigError, match="source"):
        threshold_table(bad)
    assert THRESHOLDS_FILE.exists()


def test_sample_registry_plans() -> None:
    registry = load_registry(REPO / "registry" / "sample.yaml")
    federal = plan_for(
        registry.get("ndbc-44013-stdmet"), "urn:ioos:station:wmo:44013", "sea_surface_temperature"
    )
    # Federal: the provider's flags, plus the gross range test from the threshold table.
    assert set(federal.tests) == {"syntax", "gross_range"} and federal.keep_provider_flags
    assert federal.provider_kind == "ndbc"
    regional = registry.get("ndbc-44029-ocean")
    temp = plan_for(regional, "urn:ioos:station:wmo:44029", "sea_water_temperature")
    assert set(temp.tests) >= {"gross_range", "spike", "rate_of_change", "flat_line", "location"}
    # Stream override on top of the table: the fail span stays the table's.
    assert temp.tests["gross_range"] == {"fail_span": (-5.0, 40.0), "suspect_span": (-1.5, 26.0)}
    assert temp.tests["timing_gap"] == {"fail_span": 3.0}
    salt = plan_for(regional, "urn:ioos:station:wmo:44029", "sea_water_practical_salinity")
    assert salt.tests["flat_line"]["tolerance"] == 0.001  # station override, by short id
    other = plan_for(regional, "urn:ioos:station:wmo:44030", "sea_water_practical_salinity")
    assert other.tests["flat_line"]["tolerance"] == 0.005  # the table's


def test_station_override_disable_and_bad_threshold() -> None:
    stream = make_stream(
        stations={"20363": {"spike": {"enabled": False}, "gross_range": {"fail_span": [9, 2100]}}}
    )
    plan = plan_for(stream, "urn:ioos:sensor:axiom:20363", "unknown_parameter_1000427")
    assert "spike" not in plan.tests
    assert plan.tests["gross_range"]["fail_span"] == (9.0, 2100.0)
    rows = humboldt_rows(n=50)
    flags = run_series(
        rows["time"].to_numpy(),
        rows["value"].to_numpy(),
        rows["lon"].to_numpy(),
        rows["lat"].to_numpy(),
        plan,
    )
    assert set(flags["qc_spike"].tolist()) == {2}  # disabled: not evaluated
    assert 4 in flags["qc_gross_range"] and 4 in flags["qc_agg"]
    broken = make_stream(tests={"spike": {"suspect_threshold": "high"}})
    with pytest.raises(ConfigError, match="spike"):
        plan_for(broken, "urn:x", "sea_water_temperature")
    inverted = make_stream(stations={"20363": {"gross_range": {"fail_span": [1, 5]}}})
    with pytest.raises(ConfigError, match="within fail_span"):
        plan_for(inverted, "urn:ioos:sensor:axiom:20363", "unknown_parameter_1000427")


def test_model_and_static_streams_run_gross_range_only() -> None:
    model = plan_for(make_stream("m", category="model", tests={}), "urn:x", "sea_water_temperature")
    assert set(model.tests) == {"syntax", "timing_gap", "gross_range"}
    static = plan_for(make_stream("s", category="static", tests={}), "urn:x", "wind_speed")
    assert set(static.tests) == {"syntax", "gross_range"}


def test_neighbor_test_against_a_second_station(local_settings) -> None:
    """Two stations, the second the first shifted by 5 with one value off by 900: the
    neighbor test flags exactly what ioos_qc's range test on the differences flags."""
    import pyarrow as pa
    from ioos_qc import qartod

    from lake.storage import Storage
    from lake.tables import ObservationTable
    from qc.on_write import qc_before_write

    storage = Storage.from_settings(local_settings)
    rows = humboldt_rows(n=300)
    other = rows.set_column(1, "station_id", pa.array(["urn:ioos:sensor:test:twin"] * 300))
    shifted = other["value"].to_numpy() + 5.0
    shifted[100] += 900.0
    other = other.set_column(other.schema.get_field_index("value"), "value", pa.array(shifted))
    stream = make_stream(
        tests={
            "neighbor": {
                "stations": ["twin"],
                "suspect_threshold": 50.0,
                "fail_threshold": 500.0,
                "max_time_diff": "10min",
            }
        }
    )
    table = ObservationTable(storage)
    table.write(other)
    table.write(qc_before_write(storage, stream, rows))
    stored = table.dataset().to_table().sort_by("time")
    mine = stored.filter(pa.compute.equal(stored["station_id"], rows["station_id"][0]))
    diff = rows["value"].to_numpy() - shifted
    expected = qartod.gross_range_test(inp=diff, fail_span=(-500, 500), suspect_span=(-50, 50))
    got = mine["qc_neighbor"].to_numpy()
    assert np.array_equal(got, np.ma.filled(expected, 9).astype(np.int8))
    assert got[100] == 4 and (got == 1).sum() == 299
