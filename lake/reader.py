"""The Python API for notebooks: `from lake import Lake; lk = Lake.open()`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from lake.duck import connect, refresh_views
from lake.errors import NotFound
from lake.flags import NOT_EVALUATED
from lake.netcdf import NcVariable, timeseries_dataset
from lake.settings import Settings, get_settings
from lake.storage import Storage
from lake.tables import ObservationTable

if TYPE_CHECKING:
    import dask.dataframe as dd


class Lake:
    """One lake (a local folder or an S3 prefix): SQL, station series, Dask frames."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.observations = ObservationTable(storage)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._views_live = False
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: str | None = None, settings: Settings | None = None) -> Lake:
        """Open the lake at `root` (a path or s3:// URL), or at LAKE_ROOT."""
        return cls(Storage.from_settings(settings or get_settings(), root=root))

    @property
    def root(self) -> str:
        return self.storage.root

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection whose views see the latest committed version."""
        with self._lock:
            if self._con is None:
                self._con = connect(self.storage)
            if not self._views_live:
                self._views_live = refresh_views(self._con, self.storage)
            return self._con

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run a DuckDB query over the lake's views and return an Arrow table."""
        con = self.connection()
        with self._lock:
            return con.execute(query, params).to_arrow_table()

    def series(
        self,
        dataset_id: str,
        station_id: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        variables: Sequence[str] | None = None,
        *,
        include_flagged: bool = False,
    ) -> xr.Dataset:
        """One station's series as a CF discrete-sampling-geometry dataset (timeSeries).

        Values that failed QC are NaN unless `include_flagged`; the aggregate QC flag of each
        variable is beside it as `<variable>_qc_agg`.
        """
        view = "observations_all" if include_flagged else "observations"
        where = ["dataset_id = ?", "station_id = ?"]
        params: list[Any] = [dataset_id, station_id]
        if start is not None:
            first = (
                pd.Timestamp(start).tz_localize(None)
                if pd.Timestamp(start).tzinfo is None
                else pd.Timestamp(start).tz_convert("UTC").tz_localize(None)
            )
            # The year partition as well: DuckDB then skips other years' files unopened.
            where += ["time >= ?", "year >= ?"]
            params += [first, first.year]
        if end is not None:
            last = (
                pd.Timestamp(end).tz_localize(None)
                if pd.Timestamp(end).tzinfo is None
                else pd.Timestamp(end).tz_convert("UTC").tz_localize(None)
            )
            where += ["time <= ?", "year <= ?"]
            params += [last, last.year]
        if variables:
            where.append("variable IN (SELECT unnest(?))")
            params.append(list(variables))
        rows = self.sql(
            f"SELECT time, z, lon, lat, variable, value, units, qc_agg FROM {view} "
            f"WHERE {' AND '.join(where)} ORDER BY time",
            params,
        ).to_pandas()
        if rows.empty:
            raise NotFound(
                f"no observations for dataset {dataset_id!r} station {station_id!r} in that window"
            )
        return _to_dsg(rows, dataset_id, station_id)

    def to_dask(self, columns: list[str] | None = None) -> dd.DataFrame:
        """The whole observation table as a lazy Dask DataFrame (one partition per file)."""
        import dask_deltatable

        frame: dd.DataFrame = dask_deltatable.read_deltalake(
            self.observations.url,
            columns=columns,
            delta_storage_options=self.storage.delta_options(),
            storage_options=self.storage.s3fs_options() if self.storage.is_s3 else None,
        )
        return frame

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._views_live = False


#: The station and where it is: scalars of a single-station file.
_SERIES_POSITION = (
    NcVariable(
        "time",
        "time",
        "coordinate",
        {"standard_name": "time", "axis": "T", "long_name": "time (UTC)"},
    ),
    NcVariable("station_id", "string", "station", {"long_name": "station"}),
    NcVariable(
        "lon", role="instance", attrs={"standard_name": "longitude", "units": "degrees_east"}
    ),
    NcVariable(
        "lat", role="instance", attrs={"standard_name": "latitude", "units": "degrees_north"}
    ),
    NcVariable(
        "z",
        role="instance",
        attrs={"standard_name": "height", "units": "m", "positive": "up", "axis": "Z"},
    ),
)


def _to_dsg(rows: pd.DataFrame, dataset_id: str, station_id: str) -> xr.Dataset:
    """Long rows of one station as a single-station timeSeries: a column per variable.

    A variable measured at several heights gets one column per height (`<name>_at_<z>m`).
    A time at which a variable has no flag is flagged not evaluated.
    """
    rows = rows.copy()
    levels = rows.groupby("variable")["z"].nunique()
    several = rows["variable"].map(levels).to_numpy() > 1
    names = rows["variable"].astype(str).to_numpy(dtype=object)
    if several.any():
        depth = rows["z"].map(lambda z: f"_at_{z:g}m").to_numpy(dtype=object)
        names = np.where(several, names + depth, names)
    rows["name"] = names
    # (time, name) is unique: the table's keys are dataset, station, variable, z and time.
    wide = rows.pivot(index="time", columns="name", values="value")
    flags = rows.pivot(index="time", columns="name", values="qc_agg")
    frame = rows.groupby("time")[["lon", "lat", "z"]].last().reindex(wide.index)
    frame["station_id"] = station_id
    variables = list(_SERIES_POSITION)
    meta = rows.drop_duplicates("name").set_index("name")
    for name in wide.columns:
        frame[name] = wide[name].to_numpy(dtype="float64")
        frame[f"{name}_qc_agg"] = (
            flags[name].reindex(wide.index).fillna(NOT_EVALUATED)
            if name in flags
            else NOT_EVALUATED
        )
        variables.append(
            NcVariable(
                name,
                attrs={
                    "standard_name": meta.loc[name, "variable"],
                    "units": meta.loc[name, "units"],
                    "ancillary_variables": f"{name}_qc_agg",
                },
            )
        )
        variables.append(
            NcVariable(
                f"{name}_qc_agg",
                "flag",
                attrs={
                    "standard_name": "aggregate_quality_flag",
                    "long_name": f"QARTOD flag of {name}",
                },
            )
        )
    frame = frame.reset_index()
    return timeseries_dataset(frame, variables, {"dataset_id": dataset_id}, layout="single")
