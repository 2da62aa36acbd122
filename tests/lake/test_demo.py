"""The README's first command on a fresh lake: `lake demo --no-serve`, then `lake sql`.

Values are checked against numbers read by eye from the shipped recorded files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LAKE = str(Path(sys.executable).parent / "lake")


def run(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKE_ROOT": str(root)}
    env.pop("LAKE_REGISTRY", None)
    return subprocess.run(
        [LAKE, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=900
    )


def sql(query: str, root: Path) -> list[dict]:
    result = run(["sql", query, "--format", "json"], root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_demo_builds_a_lake_whose_values_match_the_files(tmp_path: Path) -> None:
    root = tmp_path / "lake-data"
    built = run(["demo", "--no-serve"], root)
    assert built.returncode == 0, built.stderr
    assert sql("select count(*) as n from observations", root)[0]["n"] > 40_000

    def value(station: str, variable: str, time: str) -> dict:
        rows = sql(
            "select value, units, z from observations_all where station_id = "
            f"'urn:ioos:station:wmo:{station}' and variable = '{variable}' "
            f"and time = timestamp '{time}'",
            root,
        )
        assert len(rows) == 1, (station, variable, time, rows)
        return rows[0]

    # 44013.txt: "2022 06 05 12 50 270  3.0  4.0   0.5     7   3.5 100 1015.3    MM  13.8"
    assert value("44013", "wind_from_direction", "2022-06-05 12:50:00") == {
        "value": 270.0,
        "units": "degree",
        "z": 0.0,
    }
    assert value("44013", "wind_speed", "2022-06-05 12:50:00")["value"] == pytest.approx(3.0)
    assert value("44013", "sea_surface_wave_significant_height", "2022-06-05 12:50:00")[
        "value"
    ] == pytest.approx(0.5)
    pressure = value("44013", "air_pressure_at_mean_sea_level", "2022-06-05 12:50:00")
    assert pressure["value"] == pytest.approx(101530.0) and pressure["units"] == "Pa"
    sst = value("44013", "sea_surface_temperature", "2022-06-05 12:50:00")
    assert sst["value"] == pytest.approx(13.8) and sst["units"] == "degC"
    # 44029.ocean: "2022 06 05 12 04     1.0 13.10     MM 31.00" (depth 1 m: z = -1)
    water = value("44029", "sea_water_temperature", "2022-06-05 12:04:00")
    assert water == {"value": pytest.approx(13.1), "units": "degC", "z": -1.0}
    assert value("44029", "sea_water_practical_salinity", "2022-06-05 12:04:00")[
        "value"
    ] == pytest.approx(31.0)
    # 'MM' (missing) becomes no row at all: ATMP is MM in the first row of 44013.txt.
    assert (
        sql(
            "select count(*) as n from observations_all where station_id = "
            "'urn:ioos:station:wmo:44013' and variable = 'air_temperature' and "
            "time = timestamp '2022-06-05 13:00:00'",
            root,
        )[0]["n"]
        == 0
    )

    # The raw response is kept under its content hash.
    raw_ids = sql(
        "select distinct raw_id from observations_all where station_id = "
        "'urn:ioos:station:wmo:44013' and dataset_id = 'ndbc-44013-stdmet'",
        root,
    )
    assert len(raw_ids) == 1
    raw_id = raw_ids[0]["raw_id"]
    # Text is kept gzip-compressed, as `<hash>.gz` (zcat gives the bytes as sent).
    kept = root / "raw" / "ndbc-44013-stdmet" / raw_id[:2] / f"{raw_id}.gz"
    source = REPO / "registry/data/www.ndbc.noaa.gov/data/realtime2/44013.txt"
    assert gzip.decompress(kept.read_bytes()) == source.read_bytes()
    assert hashlib.sha256(source.read_bytes()).hexdigest() == raw_id

    # Running the main job again is harmless: no new values, same count.
    before = sql("select count(*) as n from observations_all", root)[0]["n"]
    again = run(["demo", "--no-serve"], root)
    assert again.returncode == 0, again.stderr
    assert sql("select count(*) as n from observations_all", root)[0]["n"] == before

    status = run(["status"], root)
    assert status.returncode == 0, status.stderr
    assert "ndbc-44013-stdmet" in status.stdout
