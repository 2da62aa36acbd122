"""Station status from the time-gap rule: active, stale after 4 hours, offline after 1 week.

A stale station turns grey on the real-time map; an offline one leaves the real-time map
but stays on the historical map. The server's maps call `station_states` directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from lake.flags import FAIL

if TYPE_CHECKING:
    import lake.reader

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=4)
OFFLINE_AFTER = timedelta(weeks=1)

State = Literal["active", "stale", "offline"]


@dataclass(frozen=True)
class StationState:
    """One station's latest data and its state on the real-time map."""

    dataset_id: str
    station_id: str
    name: str | None
    lon: float | None
    lat: float | None
    last_time: datetime | None
    last_values: dict[str, float | None] = field(default_factory=dict)
    state: State = "offline"

    @property
    def on_realtime_map(self) -> bool:
        return self.state != "offline"


def state_for(last_time: datetime | None, now: datetime) -> State:
    """active, stale (> 4 h without data) or offline (> 1 week, or never any data)."""
    if last_time is None:
        return "offline"
    age = now - last_time
    if age > OFFLINE_AFTER:
        return "offline"
    if age > STALE_AFTER:
        return "stale"
    return "active"


def _naive_utc(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def station_states(lk: lake.reader.Lake, now: datetime | None = None) -> list[StationState]:
    """Every station in the lake with its last time, latest value per variable and state.

    Times are naive UTC, like the table. Latest values are what is served: a value that
    failed QC is not shown as a station's latest reading. Stations registered but without
    data are offline. Sorted by dataset and station.
    """
    current = _naive_utc(now)
    # The series state the harvester keeps at write time answers without reading the
    # observations (a region's years of them); a lake written by other means has none, and
    # is scanned.
    kept = bool(lk.sql("SELECT count(*) AS n FROM latest")["n"][0].as_py())
    source = "latest" if kept else "observations_all"
    latest = lk.sql(
        "SELECT dataset_id, station_id, max(time) AS last_time, "
        f"arg_max(lon, time) AS lon, arg_max(lat, time) AS lat FROM {source} GROUP BY ALL"
    ).to_pylist()
    values = lk.sql(
        "SELECT dataset_id, station_id, variable, arg_max(value, time) AS value "
        + (
            f"FROM latest WHERE value IS NOT NULL AND qc_agg IS DISTINCT FROM {FAIL} GROUP BY ALL"
            if kept
            else "FROM observations WHERE value IS NOT NULL GROUP BY ALL"
        )
    ).to_pylist()
    try:
        meta = lk.sql("SELECT dataset_id, station_id, name, lon, lat FROM stations").to_pylist()
    except Exception:  # no stations table yet: a lake with observations only
        meta = []
    by_key: dict[tuple[str, str], dict] = {}
    for m in meta:
        by_key[(m["dataset_id"], m["station_id"])] = {**m, "last_time": None}
    for r in latest:
        entry = by_key.setdefault((r["dataset_id"], r["station_id"]), {"name": None})
        entry["last_time"] = r["last_time"]
        entry["lon"] = entry.get("lon") if entry.get("lon") is not None else r["lon"]
        entry["lat"] = entry.get("lat") if entry.get("lat") is not None else r["lat"]
    last_values: dict[tuple[str, str], dict[str, float | None]] = {}
    for v in values:
        last_values.setdefault((v["dataset_id"], v["station_id"]), {})[v["variable"]] = v["value"]
    out = []
    for (dataset_id, station_id), e in sorted(by_key.items()):
        out.append(
            StationState(
                dataset_id=dataset_id,
                station_id=station_id,
                name=e.get("name"),
                lon=e.get("lon"),
                lat=e.get("lat"),
                last_time=e.get("last_time"),
                last_values=dict(sorted(last_values.get((dataset_id, station_id), {}).items())),
                state=state_for(e.get("last_time"), current),
            )
        )
    return out
