"""The `/erddap` routes: tabledap data, info and search, as erddapy and ERDDAP users call them."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from coastlake.server.erddap.columns import DatasetColumns, dataset_columns
from coastlake.server.erddap.datasets import (
    DatasetSummary,
    find_dataset,
    list_datasets,
    published_dataset_ids,
)
from coastlake.server.erddap.formats import FORMATS
from coastlake.server.erddap.griddap import griddap_router, open_grid
from coastlake.server.erddap.query import compile_query, parse_query, parse_time
from coastlake.server.erddap.tabledap_meta import (
    ALL_DATASETS_COLUMNS,
    all_datasets_rows,
    grid_summary,
    published_grids,
    resolve_time_functions,
    tabledap_das,
    tabledap_dds,
)
from coastlake.server.formats import offered
from lake.deps import LakeDeps, check_dataset_id
from lake.errors import NotFound, RequestError
from lake.netcdf import acdd_attrs

log = logging.getLogger(__name__)

#: Largest tabledap answer; larger requests are refused with advice to narrow them.
MAX_ROWS = 1_000_000
#: How long a dataset's list of variables is reused before it is read from the lake again.
COLUMNS_TTL_S = 10.0
INFO_FORMATS = offered("csv", "json", "html")
SEARCH_COLUMNS = [
    "griddap",
    "Subset",
    "tabledap",
    "Make A Graph",
    "wms",
    "files",
    "Accessible",
    "Title",
    "Summary",
    "FGDC",
    "ISO 19115",
    "Info",
    "Background Info",
    "RSS",
    "Email",
    "Institution",
    "Dataset ID",
]


def _split_format(name: str, allowed: dict[str, Any]) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot:
        raise RequestError(
            f"{name[:80]!r} has no file type; add one of: .{', .'.join(sorted(allowed))}"
        )
    if fmt not in allowed:
        raise RequestError(
            f"file type .{fmt[:20]} is not supported; use one of: .{', .'.join(sorted(allowed))}"
        )
    return stem, fmt


def stream_meta(ctx: LakeDeps, dataset_id: str) -> dict[str, Any]:
    stream = ctx.stream(dataset_id)
    if stream is None:
        return {"dataset_id": dataset_id, "title": dataset_id}
    return {"dataset_id": dataset_id, **acdd_attrs(stream)}


def tabledap_answer(
    ctx: LakeDeps, dataset_id: str, fmt: str, raw_query: str
) -> tuple[bytes, str, int]:
    """Run a tabledap request; returns (body, media type, rows)."""
    check_dataset_id(dataset_id)
    table: DatasetColumns = ctx.memo(
        ("columns", dataset_id), COLUMNS_TTL_S, lambda: dataset_columns(ctx, dataset_id)
    )
    query = parse_query(resolve_time_functions(ctx, dataset_id, raw_query), table)
    sql, params = compile_query(query, table, MAX_ROWS)
    result = ctx.sql(sql, params)
    if result.num_rows > MAX_ROWS:
        raise RequestError(
            f"the request for {dataset_id!r} matches more than {MAX_ROWS:,} rows; "
            "narrow it with a time window or fewer stations",
            status=413,
        )
    if result.num_rows == 0:
        # ERDDAP answers an empty selection with 404 and this message.
        raise NotFound(f"Your query produced no matching results. (dataset {dataset_id!r})")
    render, media = FORMATS[fmt]
    return render(result, query.columns, stream_meta(ctx, dataset_id)), media, result.num_rows


def info_rows(ctx: LakeDeps, dataset_id: str) -> list[list[str]]:
    """ERDDAP info table: Row Type, Variable Name, Attribute Name, Data Type, Value."""
    summary = find_dataset(ctx, dataset_id)
    if summary is None:
        return grid_info_rows(open_grid(ctx, dataset_id))
    table = dataset_columns(ctx, dataset_id)
    rows: list[list[str]] = []
    for key, value in summary.global_attributes().items():
        kind = "double" if isinstance(value, float) else "String"
        rows.append(["attribute", "NC_GLOBAL", key, kind, str(value)])
    for col in table.columns.values():
        rows.append(["variable", col.name, "", col.erddap_type, ""])
        attrs = dict(col.attrs)
        if col.units:
            attrs["units"] = col.units
        if col.name == "time" and summary.min_time is not None:
            attrs["actual_range"] = (
                f"{summary.min_time.isoformat()}Z, {summary.max_time.isoformat()}Z"
                if summary.max_time
                else ""
            )
        for key, value in attrs.items():
            rows.append(["attribute", col.name, key, "String", str(value)])
    return rows


def grid_info_rows(ds: Any) -> list[list[str]]:
    """ERDDAP info rows of a grid: global attributes, then each axis and variable."""
    rows = [["attribute", "NC_GLOBAL", str(k), "String", str(v)] for k, v in ds.attrs.items()]
    for name in [*map(str, ds.dims), *map(str, ds.data_vars)]:
        var = ds[name]
        kind = "dimension" if name in ds.dims else "variable"
        rows.append([kind, name, "", "double" if var.dtype.kind in "fM" else "String", ""])
        attrs = dict(var.attrs)
        if var.dtype.kind == "M":
            attrs["units"] = "seconds since 1970-01-01T00:00:00Z"
        rows += [["attribute", name, str(k), "String", str(v)] for k, v in attrs.items()]
    return rows


def _search_text(params: dict[str, str]) -> str:
    text = params.get("searchFor", "").strip().strip('"').lower()
    return "" if text == "all" else text  # ERDDAP: searchFor=all lists every dataset


def _search_matches(d: DatasetSummary, params: dict[str, str]) -> bool:
    text = _search_text(params)
    haystack = " ".join(
        [d.dataset_id, d.title, d.summary, d.institution, " ".join(d.keywords), *d.variables]
    ).lower()
    if text and not all(word in haystack for word in text.split()):
        return False
    std = params.get("standard_name", "(ANY)")
    if std not in ("(ANY)", "") and std not in d.variables:
        return False
    bounds = [("minLon", "max_lon", 1), ("maxLon", "min_lon", -1)]
    bounds += [("minLat", "max_lat", 1), ("maxLat", "min_lat", -1)]
    for key, attr, sign in bounds:
        raw = params.get(key, "(ANY)")
        if raw in ("(ANY)", ""):
            continue
        try:
            limit = float(raw)
        except ValueError:
            raise RequestError(f"search: {key}={raw[:40]!r} is not a number") from None
        value = getattr(d, attr)
        if value is None or (value - limit) * sign < 0:
            return False
    for key, attr, sign in (("minTime", "max_time", 1), ("maxTime", "min_time", -1)):
        raw = params.get(key, "(ANY)")
        if raw in ("(ANY)", ""):
            continue
        when = parse_time(raw, key)
        value = getattr(d, attr)
        if value is None or (value - when).total_seconds() * sign < 0:
            return False
    return True


def router(ctx: LakeDeps) -> APIRouter:
    """Routes under /erddap, serving the lake in `ctx`."""
    api = APIRouter(prefix="/erddap", tags=["erddap"])

    @api.get("/tabledap/{name}")
    def tabledap(name: str, request: Request) -> Response:
        """ERDDAP tabledap: `<dataset>.<fmt>?vars&constraints&functions`."""
        stem, _, ext = name.rpartition(".")
        if stem == "allDatasets":
            if ext not in INFO_FORMATS:
                raise RequestError(f"allDatasets: use .csv, .json or .html, not .{ext[:20]}")
            base = str(request.base_url).rstrip("/") + "/erddap"
            published = published_dataset_ids(ctx)
            tables = list_datasets(ctx, published_only=True)
            return _table(
                ALL_DATASETS_COLUMNS, all_datasets_rows(ctx, tables, base, published), ext
            )
        if ext in ("das", "dds"):
            check_dataset_id(stem)
            table = dataset_columns(ctx, stem)
            if ext == "dds":
                return Response(tabledap_dds(table), media_type="text/plain")
            return Response(tabledap_das(table, stream_meta(ctx, stem)), media_type="text/plain")
        dataset_id, fmt = _split_format(name, FORMATS)
        body, media, rows = tabledap_answer(ctx, dataset_id, fmt, request.url.query)
        headers = {"X-Rows": str(rows)}
        if fmt in ("nc", "ncCF"):
            headers["Content-Disposition"] = f'attachment; filename="{dataset_id}.nc"'
        return Response(body, media_type=media, headers=headers)

    @api.get("/info/index.{fmt}")
    def info_index(fmt: str) -> Response:
        """The list of datasets, as ERDDAP's /info/index.csv gives it."""
        if fmt not in INFO_FORMATS:
            raise RequestError(f"info: use .csv, .json or .html, not .{fmt[:20]}")
        rows = [
            [d.dataset_id, d.title, d.institution] for d in list_datasets(ctx, published_only=True)
        ]
        return _table(["Dataset ID", "Title", "Institution"], rows, fmt)

    @api.get("/info/{dataset_id}/index.{fmt}")
    def info(dataset_id: str, fmt: str) -> Response:
        """A dataset's global and variable attributes (erddapy's get_var_by_attr reads this)."""
        check_dataset_id(dataset_id)
        if fmt not in INFO_FORMATS:
            raise RequestError(f"info: use .csv, .json or .html, not .{fmt[:20]}")
        cols = ["Row Type", "Variable Name", "Attribute Name", "Data Type", "Value"]
        return _table(cols, info_rows(ctx, dataset_id), fmt)

    def search(fmt: str, request: Request) -> Response:
        if fmt not in INFO_FORMATS:
            raise RequestError(f"search: use .csv, .json or .html, not .{fmt[:20]}")
        params = dict(request.query_params)
        base = str(request.base_url).rstrip("/") + "/erddap"
        rows = []
        for d in list_datasets(ctx, published_only=True):
            if params.get("protocol") == "griddap" or not _search_matches(d, params):
                continue
            rows.append(
                [
                    "",
                    "",  # no .subset page: the column stays empty rather than link nowhere
                    f"{base}/tabledap/{d.dataset_id}",
                    "",
                    "",
                    "",
                    "public",
                    d.title,
                    d.summary,
                    "",
                    "",
                    f"{base}/info/{d.dataset_id}/index.{fmt}",
                    "",
                    "",
                    "",
                    d.institution,
                    d.dataset_id,
                ]
            )
        if params.get("protocol") != "tabledap":
            for g in published_grids(ctx, published_dataset_ids(ctx)):
                d = grid_summary(ctx, g)
                if not _search_matches(d, params):
                    continue
                griddap = f"{base}/griddap/{d.dataset_id}"
                info = f"{base}/info/{d.dataset_id}/index.{fmt}"
                row = [griddap, "", "", "", "", "", "public", d.title, d.summary, "", "", info]
                rows.append([*row, "", "", "", d.institution, d.dataset_id])
        if not rows:
            raise NotFound("Your query produced no matching results. (nothing found in search)")
        return _table(SEARCH_COLUMNS, rows, fmt)

    @api.get("/search/index.{fmt}")
    def search_index(fmt: str, request: Request) -> Response:
        """Full-text search over published datasets."""
        return search(fmt, request)

    @api.get("/search/advanced.{fmt}")
    def search_advanced(fmt: str, request: Request) -> Response:
        """Advanced search: text, standard_name, bounding box and time range."""
        return search(fmt, request)

    return api


def _table(columns: list[str], rows: Sequence[Sequence[object]], fmt: str) -> Response:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return Response(buf.getvalue(), media_type=INFO_FORMATS["csv"])
    if fmt == "json":
        doc = {"table": {"columnNames": columns, "rows": rows}}
        return Response(json.dumps(doc), media_type=INFO_FORMATS["json"])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return Response(
        f"<!DOCTYPE html><html><body><table><tr>{head}</tr>{body}</table></body></html>",
        media_type=INFO_FORMATS["html"],
    )


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add the /erddap routes (tabledap, griddap, search, info) to `app`."""
    app.include_router(griddap_router(deps))
    app.include_router(router(deps))
