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
import pyarrow.compute as pc
import xarray as xr

from lake.duck import SERVED_VALUE, connect, refresh_views
from lake.errors import NotFound
from lake.flags import NOT_EVALUATED
from lake.netcdf import SERIES_POSITION, NcVariable, timeseries_dataset
from lake.read_cache import SeriesCache
from lake.settings import Settings, get_settings
from lake.snapshot import FileFilter, TableFiles
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
        self._files = TableFiles(self.observations.url, storage.delta_options())
        self._series_cache = SeriesCache(storage.settings.read_cache_mb * 2**20)

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

    def _read_files(self, query: str, params: list[Any]) -> pa.Table:
        """Run a query that names its Parquet files itself: no view needs to be current."""
        with self._lock:
            if self._con is None:
                self._con = connect(self.storage)
            return self._con.execute(query, params).to_arrow_table()

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
        first = _utc_naive(start)
        last = _utc_naive(end)
        years = (
            list(range(first.year, last.year + 1))
            if first is not None and last is not None
            else None
        )
        files = self._files.select(
            FileFilter(
                partitions={"variable": list(variables) if variables else None, "year": years},
                within={
                    "dataset_id": (dataset_id, dataset_id),
                    "station_id": (station_id, station_id),
                    "time": (first, last),
                },
            )
        )
        if not files:
            raise NotFound(
                f"no observations for dataset {dataset_id!r} station {station_id!r} in that window"
            )
        wanted = tuple(variables or ())
        key = (tuple(files), dataset_id, station_id, first, last, wanted, include_flagged)
        cached = self._series_cache.get(key)
        if cached is not None:
            return cached
        where = ["dataset_id = ?", "station_id = ?"]
        params: list[Any] = [files, dataset_id, station_id]
        if first is not None:
            where.append("time >= ?")
            params.append(first)
        if last is not None:
            where.append("time <= ?")
            params.append(last)
        value = "value" if include_flagged else f"{SERVED_VALUE} AS value"
        # Straight from the files the table's log names (pruned by partition and statistics)
        # rather than through delta_scan, which would replay the log for every read.
        table = self._read_files(
            f"SELECT time, z, lon, lat, variable, {value}, units, qc_agg "
            "FROM read_parquet(?, hive_partitioning = true, union_by_name = true) "
            f"WHERE {' AND '.join(where)}",
            params,
        )
        if table.num_rows == 0:
            raise NotFound(
                f"no observations for dataset {dataset_id!r} station {station_id!r} in that window"
            )
        dataset = _to_dsg(table, dataset_id, station_id)
        self._series_cache.put(key, dataset)
        return dataset

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


def _utc_naive(when: datetime | str | None) -> pd.Timestamp | None:
    """A time bound as the table stores times: UTC without a zone."""
    if when is None:
        return None
    stamp = pd.Timestamp(when)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _to_dsg(rows: pa.Table, dataset_id: str, station_id: str) -> xr.Dataset:
    """Long rows of one station as a single-station timeSeries: a column per variable.

    A variable measured at several heights gets one column per height (`<name>_at_<z>m`).
    A time at which a variable has no flag is flagged not evaluated. Pivoted with NumPy:
    (time, name) is unique, since the table's keys are dataset, station, variable, z and
    time, so each value has exactly one cell.
    """
    encoded = pc.dictionary_encode(rows["variable"]).combine_chunks()
    code = encoded.indices.to_numpy(zero_copy_only=False).astype("int64")
    variable_names = encoded.dictionary.to_pylist()
    z = rows["z"].to_numpy(zero_copy_only=False).astype("float64")
    levels = [np.unique(z[code == c]) for c in range(len(variable_names))]
    # One column per variable, or per (variable, height) where it has several heights.
    most = max((len(found) for found in levels), default=1)
    level_of = np.zeros(len(code), dtype="int64")
    for c, found in enumerate(levels):
        if len(found) > 1:
            at = code == c
            level_of[at] = np.searchsorted(found, z[at])
    keys, column_of = np.unique(code * most + level_of, return_inverse=True)
    columns = [
        f"{variable_names[key // most]}_at_{levels[key // most][key % most]:g}m"
        if len(levels[key // most]) > 1
        else variable_names[key // most]
        for key in keys.tolist()
    ]
    times, row_of = np.unique(
        rows["time"].to_numpy(zero_copy_only=False).astype("datetime64[ns]"), return_inverse=True
    )
    values = np.full((len(times), len(columns)), np.nan)
    values[row_of, column_of] = rows["value"].to_numpy(zero_copy_only=False).astype("float64")
    flags = np.full((len(times), len(columns)), float(NOT_EVALUATED))
    qc = rows["qc_agg"].to_numpy(zero_copy_only=False).astype("float64")
    flags[row_of, column_of] = np.where(np.isnan(qc), NOT_EVALUATED, qc)
    # Where the station was at each time: the last row written for that time.
    position = {}
    for coord in ("lon", "lat", "z"):
        at_time = np.full(len(times), np.nan)
        at_time[row_of] = rows[coord].to_numpy(zero_copy_only=False).astype("float64")
        position[coord] = at_time
    frame_columns: dict[str, Any] = {"time": times, **position, "station_id": station_id}
    units = rows["units"].to_numpy(zero_copy_only=False)
    first_row = np.unique(column_of, return_index=True)[1]
    variables = list(SERIES_POSITION)
    for index, name in enumerate(columns):
        frame_columns[name] = values[:, index]
        frame_columns[f"{name}_qc_agg"] = flags[:, index]
        variables.append(
            NcVariable(
                name,
                attrs={
                    "standard_name": variable_names[int(keys[index]) // most],
                    "units": units[first_row[index]],
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
    frame = pd.DataFrame(frame_columns)
    return timeseries_dataset(frame, variables, {"dataset_id": dataset_id}, layout="single")
