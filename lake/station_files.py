"""One station's observations as the lake's single-station NetCDF file (station downloads and
the monthly NCEI archive files): values, every QARTOD flag, the provider's flags, the
station's platform and the stream's metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import xarray as xr

from lake.errors import NotFound
from lake.nc_attrs import platform_attrs, stream_attrs
from lake.netcdf import SERIES_COLUMNS, station_series_dataset
from lake.reader import Lake
from lake.registry import Stream
from lake.tables import QC_COLUMNS


def station_rows_query(
    dataset_id: str,
    station_id: str,
    start: datetime | None,
    end: datetime | None,
    *,
    include_flagged: bool,
) -> tuple[str, list[Any]]:
    """The query (and its parameters) of one station's rows in [start, end]; the served
    view masks values that failed QC unless `include_flagged`. The window is given as
    years too, so DuckDB skips other years' partitions unopened."""
    view = "observations_all" if include_flagged else "observations"
    columns = ", ".join([*SERIES_COLUMNS, "qc_agg", *QC_COLUMNS, "provider_flag"])
    where = ["dataset_id = ?", "station_id = ?"]
    params: list[Any] = [dataset_id, station_id]
    if start is not None:
        where += ["time >= ?", "year >= ?"]
        params += [start, start.year]
    if end is not None:
        where += ["time <= ?", "year <= ?"]
        params += [end, end.year]
    return f"SELECT {columns} FROM {view} WHERE {' AND '.join(where)} ORDER BY time", params


def station_dataset(
    lk: Lake,
    dataset_id: str,
    station_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    variables: list[str] | None = None,
    *,
    stream: Stream | None = None,
    include_flagged: bool = False,
) -> xr.Dataset:
    """The station's series in [start, end] as a CF/ACDD/IOOS/NCEI timeSeries dataset.

    Raises NotFound when the window holds no value.
    """
    query, params = station_rows_query(
        dataset_id, station_id, start, end, include_flagged=include_flagged
    )
    rows = lk.sql(query, params).to_pandas()
    if variables:
        rows = rows[rows["variable"].isin(variables)]
    if rows.empty:
        raise NotFound(
            f"no observations for dataset {dataset_id!r} station {station_id!r} in that window"
        )
    attrs: dict[str, Any] = {"dataset_id": dataset_id}
    if stream is not None:
        attrs.update(stream_attrs(stream))
    attrs.update(_station_platform(lk, dataset_id, station_id))
    return station_series_dataset(rows, station_id, attrs)


def _station_platform(lk: Lake, dataset_id: str, station_id: str) -> dict[str, str]:
    found = lk.sql(
        "SELECT name, platform FROM stations WHERE dataset_id = ? AND station_id = ? LIMIT 1",
        [dataset_id, station_id],
    ).to_pylist()
    station = found[0] if found else {}
    return platform_attrs(station.get("platform"), station.get("name"), station_id)
