"""Search over the stac-geoparquet items with DuckDB, in memory.

The items file is read once and re-read when the build replaces it (checked at most every
`refresh_s` seconds), so search stays fast at hundreds of thousands of items with no
database server. Which datasets the public may see is decided per call from the
publication state, so an approval shows at once.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import stac_geoparquet.arrow

from lake.duck import load_extension
from lake.registry import Publication
from lake.storage import Storage
from stac.build import API_DIR, COLLECTIONS_FILE, ITEMS_FILE, JSON_PROPERTIES
from stac.cql2 import Column, FilterError, geojson_of, to_sql
from stac.publish import STATE_PATH

log = logging.getLogger(__name__)

#: Queryables every index has, beyond the scalar properties found in the file.
BASE_COLUMNS = {
    "id": Column("id"),
    "collection": Column("collection"),
    "datetime": Column("_t0"),
    "start_datetime": Column("_t0"),
    "end_datetime": Column("_t1"),
    "cf:standard_name": Column("_names", is_list=True),
    "keywords": Column("_keywords", is_list=True),
}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results."""

    items: list[dict[str, Any]]
    matched: int


class SearchIndex:
    """The items of one lake, searchable by bbox, time, collections, ids, text and CQL2."""

    def __init__(self, storage: Storage, *, refresh_s: float = 2.0) -> None:
        self.storage = storage
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._signature: tuple[Any, ...] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._table: pa.Table | None = None
        self._columns: dict[str, Column] = dict(BASE_COLUMNS)
        self.collections: dict[str, dict[str, Any]] = {}
        self._initial: dict[str, str] = {}
        self._state_checked = 0.0
        self._states: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------
    def _sig(self) -> tuple[Any, ...]:
        url = self.storage.url(API_DIR, COLLECTIONS_FILE)
        path = url.removeprefix("s3://") if self.storage.is_s3 else url
        try:
            info = self.storage.fs.info(path)
        except FileNotFoundError:
            return ()
        return (info.get("size"), info.get("mtime") or info.get("LastModified") or info.get("ETag"))

    def refresh(self, *, force: bool = False) -> None:
        """Reload the items if the catalog build replaced them."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s and self._con is not None:
            return
        with self._lock:
            self._checked = now
            sig = self._sig()
            if sig == self._signature and self._con is not None and not force:
                return
            self._load()
            self._signature = sig

    def _load(self) -> None:
        try:
            meta = json.loads(self.storage.read_bytes(self.storage.url(API_DIR, COLLECTIONS_FILE)))
            data = self.storage.read_bytes(self.storage.url(API_DIR, ITEMS_FILE))
        except FileNotFoundError:
            meta, data = {"collections": [], "publication": {}}, b""
        self.collections = {c["id"]: c for c in meta["collections"]}
        self._initial = dict(meta.get("publication", {}))
        table = (
            pq.read_table(io.BytesIO(data)) if data else pa.table({"id": pa.array([], pa.string())})
        )
        con = duckdb.connect()
        load_extension(con, "spatial")  # exact `intersects` on item geometries
        names = set(table.column_names)
        self._table = table
        if "bbox" not in names:  # an empty catalog
            con.execute(
                "CREATE TABLE items AS SELECT 0::BIGINT AS _row, ''::VARCHAR AS id, "
                "''::VARCHAR AS collection, 0.0 AS _xmin, 0.0 AS _ymin, 0.0 AS _xmax, "
                "0.0 AS _ymax, NULL::TIMESTAMPTZ AS _t0, NULL::TIMESTAMPTZ AS _t1, "
                "''::VARCHAR AS _text, []::VARCHAR[] AS _names, []::VARCHAR[] AS _keywords, "
                "NULL::GEOMETRY AS _geom "
                "WHERE false"
            )
        else:
            con.register("raw", table)

            def col(name: str, fallback: str) -> str:
                return f'"{name}"' if name in names else fallback

            t0 = (
                "coalesce("
                + ", ".join(c for c in (col("start_datetime", ""), col("datetime", "")) if c)
                + ", NULL::TIMESTAMPTZ)"
            )
            t1 = (
                "coalesce("
                + ", ".join(c for c in (col("end_datetime", ""), col("datetime", "")) if c)
                + ", NULL::TIMESTAMPTZ)"
            )
            scalars = [
                f.name
                for f in table.schema
                if (
                    pa.types.is_string(f.type)
                    or pa.types.is_floating(f.type)
                    or pa.types.is_integer(f.type)
                )
                and f.name not in ("type", "stac_version", "id", "collection")
                and f.name not in JSON_PROPERTIES
            ]
            extra = "".join(f', "{n}"' for n in scalars)
            con.execute(
                f"""CREATE TABLE items AS SELECT
                    (row_number() OVER ()) - 1 AS _row, id, collection,
                    bbox.xmin::DOUBLE AS _xmin, bbox.ymin::DOUBLE AS _ymin,
                    bbox.xmax::DOUBLE AS _xmax, bbox.ymax::DOUBLE AS _ymax,
                    {t0} AS _t0, {t1} AS _t1,
                    lower(concat_ws(' ', id, collection, {col("title", "''")},
                        {col("description", "''")},
                        array_to_string({col("keywords", "[]::VARCHAR[]")}, ' '),
                        array_to_string(list_transform(
                            {col("cf:parameter", "[]")}, x -> x.name), ' '))) AS _text,
                    coalesce(list_transform({col("cf:parameter", "[]")}, x -> x.name),
                        []::VARCHAR[]) AS _names,
                    coalesce({col("keywords", "[]::VARCHAR[]")}, []::VARCHAR[]) AS _keywords,
                    geometry::GEOMETRY AS _geom
                    {extra}
                FROM raw"""
            )
            con.unregister("raw")
            self._columns = dict(BASE_COLUMNS)
            self._columns.update({n: Column(f'"{n}"') for n in scalars})
        old, self._con = self._con, con
        if old is not None:
            old.close()
        log.info(
            "search index loaded: %d items, %d collections", table.num_rows, len(self.collections)
        )

    # -- publication -------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        """Publication state of every dataset: the recorded one, else the registry's."""
        now = time.monotonic()
        if now - self._state_checked >= self.refresh_s or not self._states:
            try:
                recorded = json.loads(self.storage.read_bytes(self.storage.url(*STATE_PATH)))
            except FileNotFoundError:
                recorded = {}
            states = dict(self._initial)
            states.update({k: v["state"] for k, v in recorded.items()})
            self._states = states
            self._state_checked = now
        return self._states

    def published(self) -> list[str]:
        """Ids of the collections the public catalog shows."""
        self.refresh()
        states = self.states()
        return sorted(c for c in self.collections if states.get(c) == Publication.published.value)

    @property
    def queryables(self) -> dict[str, Column]:
        self.refresh()
        return dict(self._columns)

    # -- search ------------------------------------------------------------------------------
    def search(
        self,
        *,
        collections: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        bbox: Sequence[float] | None = None,
        intersects: Mapping[str, Any] | None = None,
        interval: tuple[datetime | None, datetime | None] | None = None,
        q: Sequence[str] | str | None = None,
        filter: Mapping[str, Any] | str | None = None,
        limit: int = 10,
        offset: int = 0,
        include_unpublished: bool = False,
    ) -> Page:
        """Items matching every given criterion, ordered by collection and id."""
        self.refresh()
        visible = list(self.collections) if include_unpublished else self.published()
        where = ["list_contains(?, collection)"]
        params: list[Any] = [[c for c in collections if c in visible] if collections else visible]
        if ids:
            where.append("list_contains(?, id)")
            params.append(list(ids))
        if bbox:
            box = list(bbox)
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            where.append("_xmax >= ? AND _ymax >= ? AND _xmin <= ? AND _ymin <= ?")
            params += box
        if intersects:
            where.append("ST_Intersects(_geom, ST_GeomFromGeoJSON(?))")
            params.append(geojson_of(intersects))
        if interval:
            start, end = interval
            if start is not None:
                where.append("_t1 >= ?")
                params.append(start)
            if end is not None:
                where.append("_t0 <= ?")
                params.append(end)
        terms = [q] if isinstance(q, str) else list(q or [])
        words = [w.lower() for t in terms for w in str(t).replace(",", " ").split() if w]
        if words:
            where.append("(" + " OR ".join("contains(_text, ?)" for _ in words) + ")")
            params += words
        if filter:
            sql, fparams = to_sql(filter, self._columns)
            where.append(sql)
            params += fparams
        clause = " AND ".join(where)
        assert self._con is not None
        with self._lock:
            try:
                matched = self._con.execute(
                    f"SELECT count(*) FROM items WHERE {clause}", params
                ).fetchone()[0]  # type: ignore[index]
                rows = [
                    r[0]
                    for r in self._con.execute(
                        f"SELECT _row FROM items WHERE {clause} ORDER BY collection, id "
                        "LIMIT ? OFFSET ?",
                        [*params, int(limit), int(offset)],
                    ).fetchall()
                ]
            except duckdb.Error as exc:
                raise FilterError(f"the search could not run: {exc}") from exc
            table = self._table
        return Page(items=self._items(table, rows), matched=int(matched))

    def _items(self, table: pa.Table | None, rows: list[int]) -> list[dict[str, Any]]:
        if not rows or table is None:
            return []
        out = []
        for item in stac_geoparquet.arrow.stac_table_to_items(table.take(rows)):
            props = item.get("properties", {})
            for key in JSON_PROPERTIES:
                if isinstance(props.get(key), str):
                    props[key] = json.loads(props[key])
            out.append(item)
        return out
