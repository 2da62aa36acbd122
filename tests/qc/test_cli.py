"""`lake status` shows station states; `lake qc climatology build`, `reprocess`, `thresholds`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from coastlake.cli import STATUS_SECTIONS, app
from coastlake.commands.qc import status_section as print_station_states
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.on_write import qc_before_write
from tests.qc.support import humboldt_rows, make_stream


def recent_rows(storage: Storage) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ObservationTable(storage).write(
        pa.table(
            {
                "dataset_id": ["ndbc-44029-ocean", "ndbc-44029-ocean"],
                "station_id": ["urn:ioos:station:wmo:44029", "urn:ioos:station:wmo:44029"],
                "time": pa.array([now - timedelta(hours=6), now - timedelta(hours=5)]),
                "variable": ["sea_water_temperature"] * 2,
                "value": [11.0, 11.5],
                "units": ["degC"] * 2,
                "qc_agg": pa.array([1, 1], pa.int8()),
            }
        )
    )


def test_status_shows_each_station_state(local_settings: Settings) -> None:
    assert print_station_states in STATUS_SECTIONS
    storage = Storage.from_settings(local_settings)
    recent_rows(storage)
    result = CliRunner().invoke(app, ["status", "--root", storage.root])
    assert result.exit_code == 0, result.output
    assert "stations" in result.output
    assert "stale" in result.output  # last value 5 hours ago


def test_thresholds_lists_sources() -> None:
    result = CliRunner().invoke(app, ["qc", "thresholds", "sea_water_temperature"])
    assert result.exit_code == 0, result.output
    assert "SBE37" in result.output and "gross_range" in result.output


@pytest.mark.slow
def test_climatology_build_and_reprocess_commands(local_settings: Settings, tmp_path) -> None:
    """The commands on a lake holding the sample 44029 stream's rows (regional)."""
    from lake.registry import load_registry
    from tests.conftest import REPO

    storage = Storage.from_settings(local_settings)
    stream = load_registry(REPO / "registry" / "sample.yaml").get("ndbc-44029-ocean")
    rows = humboldt_rows(stream.id, n=400)
    temperature = pa.array(["sea_water_temperature"] * 400)
    rows = rows.set_column(rows.schema.get_field_index("variable"), "variable", temperature)
    rows = rows.set_column(
        rows.schema.get_field_index("value"), "value", pa.compute.divide(rows["value"], 100.0)
    )
    ObservationTable(storage).write(qc_before_write(storage, make_stream(stream.id), rows))
    runner = CliRunner()
    built = runner.invoke(app, ["qc", "climatology", "build", "--root", storage.root])
    assert built.exit_code == 0, built.output
    assert "0 monthly ranges" in built.output  # 400 values are far from two years
    done = runner.invoke(
        app,
        ["qc", "reprocess", "--stream", stream.id, "--root", storage.root, "--workers", "1"],
    )
    assert done.exit_code == 0, done.output
    assert "1 series checked" in done.output
    # The registry's thresholds (table + 44029 overrides) replaced the test stream's.
    stored = ObservationTable(storage).dataset().to_table()
    assert stored.num_rows == 400
    assert set(stored["qc_location"].to_pylist()) == {4}  # Humboldt is outside the bbox
