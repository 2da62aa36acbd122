"""A realistic synthetic observation network for benchmarks: 200 stations x 10 variables of
6-minute data with seasonal and daily cycles, noise, outages and dropped records.

Built per station so memory stays bounded; the same station arrays feed the lake and the
baselines (per-station NetCDF for xarray, per-station CSV for pandas).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

VARIABLES: dict[str, tuple[str, float, float]] = {
    # CF standard name: (units, mean, spread)
    "sea_water_temperature": ("degC", 12.0, 6.0),
    "air_temperature": ("degC", 11.0, 8.0),
    "dew_point_temperature": ("degC", 6.0, 7.0),
    "wind_speed": ("m s-1", 6.0, 3.0),
    "wind_from_direction": ("degree", 180.0, 180.0),
    "air_pressure_at_mean_sea_level": ("Pa", 101300.0, 1200.0),
    "sea_surface_wave_significant_height": ("m", 1.2, 0.8),
    "sea_water_practical_salinity": ("1", 32.0, 1.0),
    "water_surface_height_above_reference_datum": ("m", 1.0, 1.2),
    "mass_concentration_of_oxygen_in_sea_water": ("kg m-3", 0.008, 0.001),
}


@dataclass(frozen=True)
class Network:
    stations: int = 200
    days: int = 365
    step_minutes: int = 6
    start: str = "2023-01-01"
    seed: int = 42

    @property
    def times(self) -> np.ndarray:
        n = self.days * 24 * 60 // self.step_minutes
        return pd.date_range(self.start, periods=n, freq=f"{self.step_minutes}min").to_numpy()

    def station_ids(self) -> list[str]:
        return [f"urn:ioos:station:bench:st{i:03d}" for i in range(self.stations)]

    def position(self, i: int) -> tuple[float, float]:
        rng = np.random.default_rng(self.seed + 10_000 + i)
        return float(rng.uniform(-76, -66)), float(rng.uniform(36, 45))


def station_values(net: Network, i: int) -> dict[str, np.ndarray]:
    """Ten variables for one station, NaN where the station had an outage or a drop."""
    rng = np.random.default_rng(net.seed + i)
    times = net.times
    n = len(times)
    day = (times - times[0]) / np.timedelta64(1, "D")
    season = np.sin(2 * np.pi * (day - 110) / 365.25)
    diurnal = np.sin(2 * np.pi * (day % 1.0 - 0.375))
    out: dict[str, np.ndarray] = {}
    for name, (_, mean, spread) in VARIABLES.items():
        noise = np.cumsum(rng.normal(0, 0.02, n))
        noise -= np.convolve(noise, np.ones(241) / 241, mode="same")  # keep it stationary
        if name == "wind_speed":
            values = rng.weibull(2.0, n) * spread * 1.3 + 0.5 * diurnal
        elif name == "wind_from_direction":
            values = (np.cumsum(rng.normal(0, 4, n)) + rng.uniform(0, 360)) % 360
        elif name == "sea_surface_wave_significant_height":
            values = np.exp(rng.normal(np.log(mean), 0.4) + 0.3 * season + noise)
        elif name == "water_surface_height_above_reference_datum":
            values = mean + spread * np.sin(2 * np.pi * day / 0.5175) + 0.1 * noise
        else:
            values = mean + spread * 0.5 * season + 0.1 * spread * diurnal + spread * 0.2 * noise
        gaps = np.zeros(n, dtype=bool)
        for _ in range(rng.poisson(3)):
            begin = rng.integers(0, n)
            gaps[begin : begin + int(rng.exponential(3 * 240))] = True  # ~3-day outages
        gaps |= rng.random(n) < 0.01
        values = values.astype("float64")
        values[gaps] = np.nan
        out[name] = values
    return out


def long_rows(net: Network, stations: range) -> pa.Table:
    """Observation rows (long) for a range of stations, gaps left out."""
    times = net.times
    pieces = []
    for i in stations:
        lon, lat = net.position(i)
        sid = net.station_ids()[i]
        for name, values in station_values(net, i).items():
            keep = ~np.isnan(values)
            k = int(keep.sum())
            pieces.append(
                pa.table(
                    {
                        "dataset_id": pa.array(["bench-network"] * k, pa.string()),
                        "station_id": pa.array([sid] * k, pa.string()),
                        "time": pa.array(times[keep].astype("datetime64[us]"), pa.timestamp("us")),
                        "z": pa.array(np.zeros(k)),
                        "lon": pa.array(np.full(k, lon)),
                        "lat": pa.array(np.full(k, lat)),
                        "variable": pa.array([name] * k, pa.string()),
                        "value": pa.array(values[keep]),
                        "units": pa.array([VARIABLES[name][0]] * k, pa.string()),
                    }
                )
            )
    return pa.concat_tables(pieces)


def station_frames(net: Network) -> Iterator[tuple[int, pd.DataFrame]]:
    """Each station as a wide frame indexed by time (what per-station files hold)."""
    for i in range(net.stations):
        yield (
            i,
            pd.DataFrame(station_values(net, i), index=pd.DatetimeIndex(net.times, name="time")),
        )
