"""Station states from the time-gap rule, from data in a real lake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lake.reader import Lake
from lake.settings import Settings
from lake.stations import StationTable
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.status import StationState, station_states

NOW = datetime(2026, 11, 24, 12, 0)


def rows(station: str, last: datetime, values: list[float], qc_agg: list[int]) -> pa.Table:
    n = len(values)
    times = [last - timedelta(minutes=10 * (n - 1 - i)) for i in range(n)]
    return pa.table(
        {
            "dataset_id": ["buoys"] * n,
            "station_id": [station] * n,
            "time": pa.array(times, pa.timestamp("us")),
            "z": [0.0] * n,
            "lon": [-70.6] * n,
            "lat": [42.3] * n,
            "variable": ["sea_surface_temperature"] * n,
            "value": values,
            "units": ["degC"] * n,
            "qc_agg": pa.array(qc_agg, pa.int8()),
        }
    )


@pytest.fixture
def lake(any_settings: Settings) -> Lake:
    storage = Storage.from_settings(any_settings)
    table = ObservationTable(storage)
    table.write(rows("urn:fresh", NOW - timedelta(minutes=20), [10.0, 10.5, 99.0], [1, 1, 4]))
    table.write(rows("urn:five-hours", NOW - timedelta(hours=5), [11.0, 11.2], [1, 1]))
    table.write(rows("urn:two-weeks", NOW - timedelta(weeks=2), [12.0], [1]))
    StationTable(storage).upsert(
        "buoys",
        [
            {"station_id": "urn:fresh", "name": "Fresh buoy", "lon": -70.65, "lat": 42.35},
            {"station_id": "urn:never", "name": "Registered, no data yet"},
        ],
    )
    return Lake(storage)


def test_fresh_stale_offline(lake: Lake) -> None:
    states = {s.station_id: s for s in station_states(lake, now=NOW)}
    assert set(states) == {"urn:fresh", "urn:five-hours", "urn:two-weeks", "urn:never"}
    fresh = states["urn:fresh"]
    assert isinstance(fresh, StationState)
    assert fresh.state == "active" and fresh.on_realtime_map
    assert fresh.name == "Fresh buoy" and fresh.lon == -70.65
    assert fresh.last_time == NOW - timedelta(minutes=20)
    # The last value failed QC (flag 4): the latest served value is the one before it.
    assert fresh.last_values == {"sea_surface_temperature": 10.5}
    assert states["urn:five-hours"].state == "stale"
    assert states["urn:five-hours"].on_realtime_map  # grey icon, still on the map
    assert states["urn:two-weeks"].state == "offline"
    assert not states["urn:two-weeks"].on_realtime_map
    assert states["urn:never"].state == "offline" and states["urn:never"].last_time is None


def test_now_may_be_timezone_aware(lake: Lake) -> None:
    aware = NOW.replace(tzinfo=UTC) + timedelta(hours=3, minutes=40)
    states = {s.station_id: s.state for s in station_states(lake, now=aware)}
    assert states["urn:fresh"] == "active"  # exactly 4 h without data: not yet stale
    later = aware + timedelta(minutes=1)
    assert {s.station_id: s.state for s in station_states(lake, now=later)}["urn:fresh"] == (
        "stale"
    )
