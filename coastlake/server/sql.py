"""Read-only SQL over the lake (`/sql`): one SELECT, no file, network or extension access.

The sandbox is a DuckDB connection that never loads the delta extension: the tables reach it as
registered Arrow datasets (delta-rs opens the files, not DuckDB), and then external access is
switched off and the configuration locked. So user SQL cannot read_csv, read_parquet,
delta_scan, ATTACH, INSTALL, LOAD or COPY, and cannot switch that back on. Each request runs
on its own cursor with a timer that interrupts it, and the result is cut at a row limit.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa
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


@dataclass(frozen=True, slots=True)
class SqlLimits:
    """How much one request may ask: rows returned and seconds of DuckDB time."""

    default_rows: int = 10_000
    max_rows: int = 100_000
    timeout_s: float = 10.0
    memory_limit: str = "2GB"
    threads: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        """The limits an operator set with LAKE_SQL_* variables."""
        return cls(
            default_rows=settings.sql_default_rows,
            max_rows=settings.sql_max_rows,
            timeout_s=settings.sql_timeout_s,
            memory_limit=settings.sql_memory_limit,
            threads=settings.sql_threads,
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
        for setting in (
            "SET python_enable_replacements = false",
            f"SET memory_limit = '{self.limits.memory_limit}'",
            f"SET threads = {int(self.limits.threads)}",
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
            result = cur.sql(statement).limit(rows + 1).to_arrow_table()
        except duckdb.InterruptException:
            raise RequestError(
                f"query stopped after the time limit of {self.limits.timeout_s:g} s", status=408
            ) from None
        except duckdb.PermissionException as exc:
            raise RequestError(
                f"not allowed: this SQL endpoint reads only the lake's views ({_first_line(exc)})",
                status=403,
            ) from None
        except duckdb.Error as exc:
            if time.monotonic() - started >= self.limits.timeout_s:
                raise RequestError(
                    f"query stopped after the time limit of {self.limits.timeout_s:g} s",
                    status=408,
                ) from None
            raise RequestError(f"query failed: {_first_line(exc)}") from None
        finally:
            timer.cancel()
            cur.close()
        return result.slice(0, rows), result.num_rows > rows


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
        rows = table.to_pylist()
        doc = {
            "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "rows": rows,
            "row_count": len(rows),
            "truncated": truncated,
        }
        return json.dumps(doc, default=str).encode(), SQL_FORMATS["json"]
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
        table, truncated = sandbox.run(query, limit)
        body, media = encode(table, fmt, truncated)
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
