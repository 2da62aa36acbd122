"""Read-only SQL over the lake (`/sql`): one SELECT, no file, network or extension access.

The sandbox is a DuckDB connection that never loads the delta extension: the tables reach it as
registered Arrow datasets (delta-rs opens the files, not DuckDB), and then external access is
switched off and the configuration locked. So user SQL cannot read_csv, read_parquet,
delta_scan, ATTACH, INSTALL, LOAD or COPY, and cannot switch that back on. DuckDB still lets
a locked connection read its own spill directory, so spill goes to a private folder with a
size cap and the statement's table functions and file names are checked before it runs.
Each request runs on its own cursor with one deadline for the query and the encoding, and
the result is cut at a row limit and refused above a byte limit.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field

from coastlake.server.formats import offered
from lake.delta import open_table
from lake.deps import LakeDeps
from lake.errors import RequestError
from lake.flags import FAIL
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import OBSERVATION_SCHEMA

log = logging.getLogger(__name__)

SQL_FORMATS = offered("json", "csv", "parquet", "arrow")
MAX_QUERY_CHARS = 20_000
#: Table functions a query may call: generators and the catalog of what the views hold;
#: nothing that reads a file or tells the server's settings (paths among them).
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "duckdb_databases",
        "duckdb_views",
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_functions",
        "duckdb_types",
    }
)


@dataclass(frozen=True, slots=True)
class SqlLimits:
    """How much one request may ask: rows returned and seconds of DuckDB time."""

    default_rows: int = 10_000
    max_rows: int = 100_000
    timeout_s: float = 10.0
    memory_limit: str = "2GB"
    threads: int = 2
    #: Bytes of one encoded answer; a bigger result is refused (413), not sent.
    max_bytes: int = 64 * 2**20
    #: Disk DuckDB may spill to, over all queries at once.
    temp_limit: str = "1GB"

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        """The limits an operator set with LAKE_SQL_* variables."""
        return cls(
            default_rows=settings.sql_default_rows,
            max_rows=settings.sql_max_rows,
            timeout_s=settings.sql_timeout_s,
            memory_limit=settings.sql_memory_limit,
            threads=settings.sql_threads,
            max_bytes=settings.sql_max_bytes,
            temp_limit=settings.sql_temp_limit,
        )

    def as_settings(self) -> dict[str, Any]:
        """These limits as Settings fields (`settings.model_copy(update=...)`)."""
        return {f"sql_{k}": v for k, v in asdict(self).items()}


class SqlBody(BaseModel):
    query: str = Field(description="One SELECT statement over observations, stations.")
    format: str = "json"
    limit: int | None = None


class SqlSandbox:
    """Locked DuckDB over Arrow datasets of the lake's tables, refreshed as versions change."""

    def __init__(self, storage: Storage, limits: SqlLimits | None = None) -> None:
        self.storage = storage
        self.limits = limits or SqlLimits()
        self._lock = threading.Lock()
        self._checked = 0.0
        self._sources: dict[str, Any] = {}
        self._versions: tuple[int | None, ...] = ()
        self._base = duckdb.connect(":memory:")
        # Spill of this sandbox only, removed with it; never the system's shared temp folder.
        self.spill_dir = tempfile.mkdtemp(prefix="coastlake-sql-spill-")
        weakref.finalize(self, shutil.rmtree, self.spill_dir, True)
        for setting in (
            "SET python_enable_replacements = false",
            f"SET memory_limit = '{_size(self.limits.memory_limit)}'",
            f"SET threads = {int(self.limits.threads)}",
            f"SET temp_directory = '{self.spill_dir}'",
            f"SET max_temp_directory_size = '{_size(self.limits.temp_limit)}'",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET enable_external_access = false",
            "SET lock_configuration = true",
        ):
            self._base.execute(setting)

    def _refresh(self) -> dict[str, Any]:
        """Arrow datasets of the current table versions (re-checked at most once a second)."""
        with self._lock:
            if self._sources and time.monotonic() - self._checked < 1.0:
                return self._sources
            tables = {
                name: open_table(self.storage.url("tables", name), self.storage.delta_options())
                for name in ("observations", "stations", "series")
            }
            versions = tuple(t.version() if t is not None else None for t in tables.values())
            if versions != self._versions or not self._sources:
                sources: dict[str, Any] = {}
                for name, table in tables.items():
                    if table is not None:
                        sources[name] = table.to_pyarrow_dataset()
                    elif name == "observations":
                        sources[name] = OBSERVATION_SCHEMA.empty_table()
                self._sources, self._versions = sources, versions
            self._checked = time.monotonic()
            return self._sources

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor that sees `observations`, `observations_all`, `stations` and `latest` only."""
        cur = self._base.cursor()
        for name, source in self._refresh().items():
            cur.register(f"__lake_{name}", source)
        cur.execute(
            "CREATE OR REPLACE TEMP VIEW observations_all AS SELECT * FROM __lake_observations"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP VIEW observations AS SELECT * REPLACE "
            f"(CASE WHEN qc_agg = {FAIL} THEN NULL ELSE value END AS value) FROM observations_all"
        )
        if "stations" in self._sources:
            cur.execute("CREATE OR REPLACE TEMP VIEW stations AS SELECT * FROM __lake_stations")
        if "series" in self._sources:
            cur.execute(
                "CREATE OR REPLACE TEMP VIEW latest AS SELECT dataset_id, station_id, variable, z,"
                " last_time AS time, value, units, qc_agg, lon, lat FROM __lake_series"
            )
        return cur

    def run(self, query: str, limit: int | None = None) -> tuple[pa.Table, bool]:
        """Run one SELECT; returns (rows up to the limit, whether more rows were cut off)."""
        statement = check_select(query)
        check_sources(statement)
        rows = self.limits.default_rows if limit is None else limit
        if not 0 < rows <= self.limits.max_rows:
            raise RequestError(
                f"limit must be between 1 and {self.limits.max_rows:,} rows, got {rows:,}"
            )
        cur = self.cursor()
        timer = threading.Timer(self.limits.timeout_s, cur.interrupt)
        timer.start()
        started = time.monotonic()
        try:
            result = self._fetch_bounded(cur.sql(statement).limit(rows + 1))
        except duckdb.InterruptException:
            raise RequestError(
                f"query stopped after the time limit of {self.limits.timeout_s:g} s", status=408
            ) from None
        except duckdb.PermissionException as exc:
            raise RequestError(
                f"not allowed: this SQL endpoint reads only the lake's views ({_first_line(exc)})",
                status=403,
            ) from None
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            # Errors met while batches stream out reach us through Arrow, not DuckDB.
            if time.monotonic() - started >= self.limits.timeout_s or "INTERRUPT" in str(exc):
                raise RequestError(
                    f"query stopped after the time limit of {self.limits.timeout_s:g} s",
                    status=408,
                ) from None
            raise RequestError(f"query failed: {_first_line(exc)}") from None
        finally:
            timer.cancel()
            cur.close()
        return result.slice(0, rows), result.num_rows > rows

    def _fetch_bounded(self, relation: duckdb.DuckDBPyRelation) -> pa.Table:
        """The relation's rows, read batch by batch and refused (413) as soon as they hold
        more than the byte limit, so a huge result is never held whole."""
        # DuckDB's own Arrow reader: it lets go of the GIL while the query runs, so other
        # requests (and /healthz) keep being answered.
        reader = relation.to_arrow_reader(8192)
        batches: list[pa.RecordBatch] = []
        held = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            held += batch.nbytes
            if held > self.limits.max_bytes:
                reader.close()
                raise RequestError(
                    f"the result holds more than the {self.limits.max_bytes / 2**20:,.0f} MB "
                    "one answer may carry; select fewer columns or rows (limit=...)",
                    status=413,
                )
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)


def _size(text: str) -> str:
    """A DuckDB size such as '2GB', checked (it is pasted into a SET statement)."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", text.strip(), re.IGNORECASE):
        raise ValueError(f"{text!r} is not a size such as 512MB or 2GB")
    return text.strip()


def check_sources(statement: str) -> None:
    """Refuse a statement that reads anything but the lake's views: a table function other
    than a generator, or a file name in FROM (DuckDB's replacement scan of a path)."""
    with duckdb.connect(":memory:") as parser:
        (tree,) = parser.execute("SELECT json_serialize_sql(?)", [statement]).fetchone() or ("",)
    doc = json.loads(tree)
    if doc.get("error"):
        raise RequestError(f"SQL does not parse: {str(doc.get('error_message', ''))[:300]}")
    for node in _nodes(doc):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise RequestError(
                    f"not allowed: table function {name[:60]!r}; this SQL endpoint reads only "
                    "the lake's views (observations, observations_all, stations, latest)",
                    status=403,
                )
        elif kind == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            if (
                re.search(r"[/\\.:~*?]", name)
                or node.get("catalog_name")
                or node.get("schema_name")
            ):
                raise RequestError(
                    "not allowed: FROM names a file or another database; this SQL endpoint "
                    "reads only the lake's views (observations, observations_all, stations, "
                    "latest)",
                    status=403,
                )


def _nodes(doc: Any) -> Any:
    """Every dict in a parsed statement tree."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def check_select(query: str) -> str:
    """The query if it is exactly one SELECT statement; RequestError (403/400) otherwise."""
    if not query or not query.strip():
        raise RequestError("empty query: send one SELECT statement as q=...")
    if len(query) > MAX_QUERY_CHARS:
        raise RequestError(f"query longer than {MAX_QUERY_CHARS:,} characters")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise RequestError(f"SQL does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise RequestError(f"send exactly one statement, got {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise RequestError(
            f"only SELECT is allowed here; this is {statement.type.name} (the lake is read-only)",
            status=403,
        )
    return statement.query


def encode(table: pa.Table, fmt: str, truncated: bool) -> tuple[bytes, str]:
    """The result in one of json, csv, parquet, arrow."""
    if fmt == "json":
        safe = json_safe(table)
        try:
            rows = safe.to_pylist()
        except (ValueError, OverflowError):
            # A date Python cannot hold (before year 1, after 9999): Arrow writes it as text.
            rows = json_safe(safe, temporal_as_text=True).to_pylist()
        doc = {
            "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "rows": rows,
            "row_count": len(rows),
            "truncated": truncated,
        }
        try:
            text = json.dumps(doc, default=str, allow_nan=False)
        except ValueError:  # a NaN nested in a list or struct
            text = json.dumps(_finite(doc), default=str, allow_nan=False)
        return text.encode(), SQL_FORMATS["json"]
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buf)
    elif fmt == "parquet":
        pq.write_table(table, buf)
    elif fmt == "arrow":
        with pa.ipc.new_stream(buf, table.schema) as writer:
            writer.write_table(table)
    else:
        raise RequestError(
            f"format {fmt[:20]!r} is not offered; use one of {', '.join(SQL_FORMATS)}"
        )
    return buf.getvalue(), SQL_FORMATS[fmt]


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def json_safe(table: pa.Table, *, temporal_as_text: bool = False) -> pa.Table:
    """Columns JSON can carry: NaN and infinities as null (JSON has no such numbers); with
    `temporal_as_text`, dates and times as ISO text, which Arrow writes for any year (Python's
    datetime holds years 1..9999 only)."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_floating(kind):
            column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, kind))
        elif temporal_as_text and pa.types.is_temporal(kind):
            column = pc.cast(column, pa.string())
        elif pa.types.is_decimal(kind):
            column = pc.cast(column, pa.float64())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def install(app: FastAPI, deps: LakeDeps) -> None:
    """GET /sql?q=...&format=json&limit=N and POST /sql {query, format, limit}, within the
    LAKE_SQL_* limits."""
    api = APIRouter(tags=["sql"])
    sandbox = SqlSandbox(deps.storage, SqlLimits.from_settings(deps.settings))

    def answer(query: str, fmt: str, limit: int | None) -> Response:
        if fmt not in SQL_FORMATS:
            raise RequestError(
                f"format {fmt[:20]!r} is not offered; use one of {', '.join(SQL_FORMATS)}"
            )
        started = time.monotonic()
        table, truncated = sandbox.run(query, limit)
        body, media = encode(table, fmt, truncated)
        # The deadline covers the whole answer: a result that took long to encode is not sent.
        if time.monotonic() - started > sandbox.limits.timeout_s:
            raise RequestError(
                f"answer took longer than the time limit of {sandbox.limits.timeout_s:g} s "
                "to prepare; select fewer rows or columns",
                status=408,
            )
        headers = {"X-Rows": str(table.num_rows), "X-Truncated": str(truncated).lower()}
        return Response(body, media_type=media, headers=headers)

    @api.get("/sql")
    def sql_get(
        request: Request, q: str = "", format: str = "json", limit: str | None = None
    ) -> Response:
        """One read-only SELECT over observations, observations_all, stations."""
        return answer(q, format, _parse_limit(limit))

    @api.post("/sql")
    def sql_post(body: SqlBody) -> Response:
        """The same as GET, with the query in a JSON body."""
        return answer(body.query, body.format, body.limit)

    app.include_router(api)


def _parse_limit(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestError(f"limit {raw[:30]!r} is not a whole number") from None
