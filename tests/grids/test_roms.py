"""ROMS (curvilinear) output: refused by default, regridded when the stream asks for it —
velocities rotated to east/north at rho points, then linearly interpolated to lat/lon."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ingest.grid_roms import velocity_at_rho
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.settings import Settings
from lake.storage import Storage
from tests.grids.support import ROMS, grid_stream


def test_velocity_rotated_to_east_north_at_rho_points() -> None:
    ds = xr.open_dataset(ROMS)
    east, north = velocity_at_rho(ds, "u_sur", "v_sur")
    u, v = ds.u_sur.values, ds.v_sur.values
    angle = ds.angle.values
    checked = 0
    for j, i in [(30, 18), (10, 5), (50, 30), (34, 20)]:
        if ds.mask_rho.values[j, i] == 0:
            assert np.isnan(east[0, j, i])
            continue
        ur = 0.5 * (u[0, j, i - 1] + u[0, j, i])
        vr = 0.5 * (v[0, j - 1, i] + v[0, j, i])
        a = angle[j, i]
        assert east[0, j, i] == pytest.approx(ur * np.cos(a) - vr * np.sin(a))
        assert north[0, j, i] == pytest.approx(ur * np.sin(a) + vr * np.cos(a))
        # rotation keeps the speed
        assert np.hypot(east[0, j, i], north[0, j, i]) == pytest.approx(np.hypot(ur, vr))
        checked += 1
    assert checked >= 2


def test_roms_regridded_and_stored_as_a_run(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    ingest_grid(storage, grid_stream("wcofs", ROMS, category="model", regrid=True))
    store = GridStore(storage, "wcofs")
    lake = store.open()
    assert lake.u_east.attrs["standard_name"] == "surface_eastward_sea_water_velocity"
    assert "speed" in lake and "direction" in lake
    assert store.runs() == ["20241017T010000Z"]
    ds = xr.open_dataset(ROMS)
    east, _ = velocity_at_rho(ds, "u_sur", "v_sur")
    lat2, lon2 = ds.lat_rho.values, ds.lon_rho.values
    step = float(lake.lat[1] - lake.lat[0])
    grid = lake.u_east.isel(time=0).values
    finite = np.argwhere(np.isfinite(grid))
    assert len(finite) > 1000
    # linear interpolation is a convex combination of nearby model values
    for jj, ii in finite[:: max(1, len(finite) // 40)]:
        la, lo = float(lake.lat[jj]), float(lake.lon[ii])
        near = (np.abs(lat2 - la) < 3 * step) & (np.abs(lon2 - lo) < 3 * step)
        values = east[0][near]
        values = values[np.isfinite(values)]
        assert values.size
        assert values.min() - 1e-6 <= grid[jj, ii] <= values.max() + 1e-6
    assert lake.time.values[0] == ds.ocean_time.values[0]
