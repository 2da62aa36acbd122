"""What ERDDAP clients ask of tabledap besides data: `.das` and `.dds` (a DAP Sequence of
the dataset's columns), the `allDatasets` table, and the `min(time)`/`max(time)` forms of
time constraints (`time>=max(time)-1day`), resolved against the dataset's own times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import unquote

from coastlake.server.erddap.columns import DatasetColumns
from coastlake.server.erddap.datasets import DatasetSummary
from lake.deps import LakeDeps
from lake.errors import NotFound, RequestError
from lake.grids import GridInfo, list_grids
from tiles.dap_model import das_block
from tiles.dap_response import dap_name

_DAP_TYPES = {"String": "String", "double": "Float64", "byte": "Byte"}
_TIME_FUNCTION = re.compile(
    r"(?P<fn>min|max)\(time\)(?:\s*(?P<sign>[+-])\s*(?P<n>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>seconds?|minutes?|hours?|days?|weeks?|months?|years?)?)?"
)
_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
ALL_DATASETS_COLUMNS = [
    "datasetID",
    "accessible",
    "institution",
    "dataStructure",
    "cdm_data_type",
    "title",
    "minLongitude",
    "maxLongitude",
    "minLatitude",
    "maxLatitude",
    "minTime",
    "maxTime",
    "griddap",
    "tabledap",
    "summary",
]


def tabledap_dds(table: DatasetColumns) -> str:
    lines = ["Dataset {", "  Sequence {"]
    lines += [f"    {_DAP_TYPES[c.erddap_type]} {c.name};" for c in table.columns.values()]
    lines += ["  } s;", f"}} {dap_name(table.dataset_id)};"]
    return "\n".join(lines) + "\n"


def tabledap_das(table: DatasetColumns, global_attrs: dict[str, object]) -> str:
    lines = ["Attributes {", "  s {"]
    for col in table.columns.values():
        attrs: dict[str, object] = dict(col.attrs)
        if col.kind == "time":
            attrs["units"] = "seconds since 1970-01-01T00:00:00Z"
        elif col.units:
            attrs["units"] = col.units
        lines += das_block(col.name, attrs, indent="    ")
    lines.append("  }")
    lines += das_block("NC_GLOBAL", dict(global_attrs), indent="  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def resolve_time_functions(ctx: LakeDeps, dataset_id: str, raw_query: str) -> str:
    """`max(time)-1day` (and `min(time)+...`) replaced by the ISO time it names."""
    if "(time)" not in raw_query:
        return raw_query
    query = unquote(raw_query)
    (row,) = ctx.sql(
        "SELECT min(time) AS t0, max(time) AS t1 FROM observations WHERE dataset_id = ?",
        [dataset_id],
    ).to_pylist()
    if row["t0"] is None:
        raise NotFound(f"Your query produced no matching results. (dataset {dataset_id!r})")

    def replace(m: re.Match[str]) -> str:
        value: datetime = row["t0"] if m["fn"] == "min" else row["t1"]
        if m["n"]:
            seconds = float(m["n"]) * _SECONDS[(m["unit"] or "second").rstrip("s")]
            value += timedelta(seconds=seconds if m["sign"] == "+" else -seconds)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")

    out = _TIME_FUNCTION.sub(replace, query)
    if "(time)" in out:
        raise RequestError("use min(time) or max(time), optionally -<n><unit> (max(time)-1day)")
    return out


def all_datasets_rows(
    ctx: LakeDeps, tables: list[DatasetSummary], base: str, published: set[str] | None
) -> list[list[object]]:
    """ERDDAP's allDatasets: one row per published table and grid."""

    def iso(t: datetime | None) -> str | None:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None

    rows: list[list[object]] = [
        [
            d.dataset_id,
            "public",
            d.institution,
            "table",
            "TimeSeries",
            d.title,
            d.min_lon,
            d.max_lon,
            d.min_lat,
            d.max_lat,
            iso(d.min_time),
            iso(d.max_time),
            "",
            f"{base}/tabledap/{d.dataset_id}",
            d.summary,
        ]
        for d in tables
    ]
    for g in published_grids(ctx, published):
        d = grid_summary(ctx, g)
        rows.append(
            [
                d.dataset_id,
                "public",
                d.institution,
                "grid",
                "Grid",
                d.title,
                d.min_lon,
                d.max_lon,
                d.min_lat,
                d.max_lat,
                iso(d.min_time),
                iso(d.max_time),
                f"{base}/griddap/{d.dataset_id}",
                "",
                d.summary,
            ]
        )
    return rows


def grid_summary(ctx: LakeDeps, g: GridInfo) -> DatasetSummary:
    """A grid described as search and allDatasets describe a table."""
    stream = ctx.stream(g.dataset_id)
    west, south, east, north = g.bbox or (None, None, None, None)
    return DatasetSummary(
        dataset_id=g.dataset_id,
        title=stream.title if stream else str(g.attrs.get("title", g.dataset_id)),
        summary=(stream.summary if stream else str(g.attrs.get("summary", ""))).strip(),
        institution=stream.provider.name if stream else str(g.attrs.get("institution", "")),
        license=stream.license if stream else str(g.attrs.get("license", "")),
        citation=stream.citation if stream else "",
        keywords=tuple(stream.keywords) if stream else (),
        published=True,
        variables=tuple(v.standard_name or v.name for v in g.variables),
        min_lon=west,
        max_lon=east,
        min_lat=south,
        max_lat=north,
        min_time=g.time_start.replace(tzinfo=None) if g.time_start else None,
        max_time=g.time_end.replace(tzinfo=None) if g.time_end else None,
    )


def published_grids(ctx: LakeDeps, published: set[str] | None) -> list[GridInfo]:
    """Grids the public lists: published (the catalog's workflow, else the registry), or put
    in the lake without a registry entry (`lake grid ingest` by an operator)."""
    out = []
    for g in list_grids(ctx.storage):
        stream = ctx.stream(g.dataset_id)
        if stream is None:
            out.append(g)
        elif published is not None:
            if g.dataset_id in published:
                out.append(g)
        elif stream.publication.value == "published":
            out.append(g)
    return out
