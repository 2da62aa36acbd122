"""DuckDB over the lake: extensions from the PyPI wheels, views over the Delta tables.

Views: `observations` (values that failed QC masked to NULL, what is served by default),
`observations_all` (everything, with the flags), `stations` (station metadata), `series`
(every series' first and last time, kept at write time) and `latest` (the newest value of
every series, from the same state).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import duckdb

from lake.delta import open_table
from lake.errors import StorageError
from lake.flags import FAIL
from lake.series import SERIES_SCHEMA
from lake.storage import Storage
from lake.tables import OBSERVATION_SCHEMA, missing_fields

log = logging.getLogger(__name__)

DUCKDB_VERSION = "v" + duckdb.__version__
#: DuckDB names of the Arrow types a column added later may have.
_SQL_TYPES = {"int8": "TINYINT", "int32": "INTEGER", "double": "DOUBLE", "string": "VARCHAR"}
#: The value as served by default: NULL where QC failed it.
SERVED_VALUE = f"CASE WHEN qc_agg = {FAIL} THEN NULL ELSE value END"


def extension_file(name: str) -> Path | None:
    """The signed binary a `duckdb-extension-<name>` wheel carries, if installed."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return None
    path = Path(module.__file__ or "").parent / "extensions" / DUCKDB_VERSION
    found = path / f"{name}.duckdb_extension"
    return found if found.exists() else None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD an extension from its wheel (no download, nothing written to $HOME)."""
    path = extension_file(name)
    try:
        if path is not None:
            con.execute(f"LOAD '{path}'")
        else:
            con.execute(f"INSTALL {name}; LOAD {name}")
    except duckdb.Error as exc:
        raise StorageError(f"DuckDB extension {name!r} could not be loaded: {exc}") from exc


def _configure_s3(con: duckdb.DuckDBPyConnection, storage: Storage) -> None:
    load_extension(con, "httpfs")
    s = storage.settings
    parts = ["TYPE s3", f"REGION '{s.region}'"]
    if s.aws_access_key_id:
        parts += [f"KEY_ID '{s.aws_access_key_id}'", f"SECRET '{s.aws_secret_access_key}'"]
    if s.aws_session_token:
        parts.append(f"SESSION_TOKEN '{s.aws_session_token}'")
    if s.aws_endpoint_url:
        scheme, _, host = s.aws_endpoint_url.partition("://")
        parts += [f"ENDPOINT '{host.rstrip('/')}'", "URL_STYLE 'path'"]
        parts.append(f"USE_SSL {'true' if scheme == 'https' else 'false'}")
    con.execute(f"CREATE OR REPLACE SECRET lake_s3 ({', '.join(parts)})")


def _table_source(con: duckdb.DuckDBPyConnection, storage: Storage, name: str) -> str | None:
    """SQL for scanning a Delta table, or None when the table does not exist yet."""
    url = storage.url("tables", name)
    table = open_table(url, storage.delta_options())
    if table is None:
        return None
    if not table.file_uris():
        # delta_scan on a table with no files has no columns to bind; use its schema instead.
        arrow_empty = table.to_pyarrow_dataset().to_table().slice(0, 0)
        con.register(f"__empty_{name}", arrow_empty)
        return f"SELECT * FROM __empty_{name}"
    nulls = "".join(
        f", CAST(NULL AS {_SQL_TYPES[str(f.type)]}) AS {f.name}"
        for f in (missing_fields(table) if name == "observations" else [])
    )
    # A column added to the schema after this table was made (a new QC test) reads as
    # NULL until the next write adds it to the table itself.
    return f"SELECT *{nulls} FROM delta_scan('{url}')"


def connect(storage: Storage, *, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's views defined."""
    con = duckdb.connect(database)
    # Delta never rewrites a file under the same name, so a file's footer, once read, stays
    # true: keeping it saves a read per file on every station query.
    con.execute("SET parquet_metadata_cache = true")
    load_extension(con, "delta")
    load_extension(con, "icu")
    if storage.is_s3:
        _configure_s3(con, storage)
    refresh_views(con, storage)
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, storage: Storage) -> bool:
    """(Re)define the views so they see tables created since the connection opened.

    A view over delta_scan reads the newest committed version at every query, so once both
    tables are live nothing needs redefining; returns True when that is the case.
    """
    source = _table_source(con, storage, "observations")
    # A view adding NULL columns must be redefined once the table has them.
    live = source is not None and source.startswith("SELECT * FROM delta_scan")
    if source is None:
        con.register("__empty_observations", OBSERVATION_SCHEMA.empty_table())
        source = "SELECT * FROM __empty_observations"
    con.execute(f"CREATE OR REPLACE VIEW observations_all AS {source}")
    con.execute(
        "CREATE OR REPLACE VIEW observations AS SELECT * REPLACE "
        f"({SERVED_VALUE} AS value) FROM observations_all"
    )
    series = _table_source(con, storage, "series")
    if series is None:
        con.register("__empty_series", SERIES_SCHEMA.empty_table())
        series = "SELECT * FROM __empty_series"
    # Every series' span, kept at write time: what the catalog's extents are made of.
    con.execute(f"CREATE OR REPLACE VIEW series AS {series}")
    # The newest value of every series, kept at write time: what the real-time map asks.
    con.execute(
        "CREATE OR REPLACE VIEW latest AS SELECT dataset_id, station_id, variable, z, "
        "last_time AS time, value, units, qc_agg, lon, lat FROM (" + series + ")"
    )
    stations = _table_source(con, storage, "stations")
    if stations is not None:
        con.execute(f"CREATE OR REPLACE VIEW stations AS {stations}")
    return (
        live
        and series.startswith("SELECT * FROM delta_scan")
        and stations is not None
        and stations.startswith("SELECT * FROM delta_scan")
    )
