"""The Python API and the CLI over a lake built from the real NDBC 44013 file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from coastlake.cli import app
from lake.errors import NotFound
from lake.reader import Lake
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.lake.tables_support import real_rows

STATION = "urn:ioos:station:wmo:44013"


@pytest.fixture
def lake(any_settings: Settings) -> Lake:
    ObservationTable(Storage.from_settings(any_settings)).write(real_rows())
    return Lake.open(settings=any_settings)


def test_sql_counts_and_reads_values(lake: Lake) -> None:
    result = lake.sql("select count(*) as n from observations").to_pylist()
    assert result == [{"n": real_rows().num_rows}]
    # '2022 06 05 13 00 280  3.0  4.0 MM MM MM MM 1015.2 MM 13.9' is the file's first row.
    row = lake.sql(
        "select value, units from observations where station_id = ? and variable = ? "
        "and time = timestamp '2022-06-05 13:00:00'",
        [STATION, "air_pressure_at_mean_sea_level"],
    ).to_pylist()
    assert row == [{"value": pytest.approx(101520.0), "units": "Pa"}]


def test_failed_values_are_masked_by_default(lake: Lake) -> None:
    table = ObservationTable(lake.storage)
    rows = real_rows().slice(0, 3)
    flagged = rows.append_column("qc_agg", pa.array([4, 1, 3], "int8"))
    table.write(flagged)
    masked = lake.sql("select count(value) as n from observations where qc_agg = 4").to_pylist()
    raw = lake.sql("select count(value) as n from observations_all where qc_agg = 4").to_pylist()
    assert masked == [{"n": 0}]
    assert raw == [{"n": 1}]


def test_series_is_a_cf_timeseries(lake: Lake) -> None:
    ds = lake.series(
        "ndbc-44013-stdmet",
        STATION,
        start="2022-06-05T12:00:00Z",
        end="2022-06-05T13:00:00Z",
        variables=["sea_surface_temperature", "wind_speed"],
    )
    assert ds.attrs["featureType"] == "timeSeries"
    assert ds["station_id"].attrs["cf_role"] == "timeseries_id"
    assert set(ds.data_vars) == {
        "sea_surface_temperature",
        "sea_surface_temperature_qc_agg",
        "wind_speed",
        "wind_speed_qc_agg",
    }
    assert ds["sea_surface_temperature"].attrs["units"] == "degC"
    # 13:00 SST 13.9, 12:50 SST 13.8 in the file
    assert float(ds["sea_surface_temperature"].sel(time="2022-06-05T13:00").item()) == (
        pytest.approx(13.9)
    )
    assert float(ds["sea_surface_temperature"].sel(time="2022-06-05T12:50").item()) == (
        pytest.approx(13.8)
    )
    assert float(ds["lat"]) == pytest.approx(42.346)
    assert np.all(ds["wind_speed_qc_agg"].values == 2)  # nothing evaluated yet
    with pytest.raises(NotFound, match="no observations"):
        lake.series("ndbc-44013-stdmet", "urn:ioos:station:wmo:00000")


def test_to_dask_covers_the_table(lake: Lake) -> None:
    frame = lake.to_dask(columns=["variable", "value"])
    assert len(frame) == real_rows().num_rows
    means = frame.groupby("variable").value.mean().compute()
    expected = lake.sql(
        "select avg(value) as m from observations_all where variable = 'wind_speed'"
    ).to_pylist()[0]["m"]
    assert means["wind_speed"] == pytest.approx(expected)


def test_cli_sql_formats(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ObservationTable(Storage.from_settings(Settings(root=str(root)))).write(real_rows())
    runner = CliRunner()
    query = (
        "select variable, units, count(*) as n from observations "
        "where variable = 'sea_surface_temperature' group by all"
    )
    as_json = runner.invoke(app, ["sql", query, "--format", "json", "--root", str(root)])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert rows[0]["units"] == "degC" and rows[0]["n"] > 6000
    as_csv = runner.invoke(app, ["sql", query, "--format", "csv", "--root", str(root)])
    assert as_csv.stdout.splitlines()[0] == "variable,units,n"
    as_table = runner.invoke(app, ["sql", query, "--root", str(root)])
    assert "sea_surface_temperature" in as_table.stdout
    bad = runner.invoke(app, ["sql", "select nope from observations", "--root", str(root)])
    assert bad.exit_code == 1
    assert "nope" in bad.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in ("init", "check", "sql", "status", "compact", "vacuum", "demo", "harvest"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_an_open_lake_sees_later_writes(any_settings: Settings) -> None:
    lake = Lake.open(settings=any_settings)
    assert lake.sql("select count(*) as n from observations").to_pylist() == [{"n": 0}]
    table = ObservationTable(lake.storage)
    table.write(real_rows().slice(0, 100))
    assert lake.sql("select count(*) as n from observations").to_pylist() == [{"n": 100}]
    table.write(real_rows().slice(100, 50))
    assert lake.sql("select count(*) as n from observations").to_pylist() == [{"n": 150}]


def test_a_repeated_series_read_sees_every_new_write(lake: Lake) -> None:
    window: dict[str, Any] = {"start": "2022-06-05T12:00:00Z", "end": "2022-06-05T13:00:00Z"}
    lake.series("ndbc-44013-stdmet", STATION, **window, variables=["wind_speed"])
    again = lake.series("ndbc-44013-stdmet", STATION, **window, variables=["wind_speed"])
    again["wind_speed"].values[:] = -1.0  # the caller's copy: changing it changes nothing kept
    third = lake.series("ndbc-44013-stdmet", STATION, **window, variables=["wind_speed"])
    assert float(third["wind_speed"].sel(time="2022-06-05T13:00").item()) == pytest.approx(3.0)
    # The provider corrects 13:00; the next read has the new value, not the remembered one.
    corrected = real_rows().filter(
        pa.compute.and_(
            pa.compute.equal(real_rows()["variable"], "wind_speed"),
            pa.compute.equal(
                real_rows()["time"],
                pa.scalar(datetime(2022, 6, 5, 13, 0), real_rows()["time"].type),
            ),
        )
    )
    assert corrected.num_rows == 1
    corrected = corrected.set_column(
        corrected.schema.get_field_index("value"), "value", pa.array([7.5])
    )
    ObservationTable(lake.storage).write(corrected)
    after = lake.series("ndbc-44013-stdmet", STATION, **window, variables=["wind_speed"])
    assert float(after["wind_speed"].sel(time="2022-06-05T13:00").item()) == pytest.approx(7.5)
