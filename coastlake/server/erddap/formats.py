"""Render a tabledap result the way ERDDAP does: csv, csvp, json, nc/ncCF (CF DSG), geoJson,
htmlTable. Times are ISO 8601 UTC in text formats and seconds since 1970 in NetCDF."""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa

from coastlake.server.erddap.columns import Column
from coastlake.server.formats import MEDIA_TYPES
from lake.errors import RequestError
from lake.netcdf import CONVENTIONS, NcVariable, Role, observations_to_netcdf

ISO = "%Y-%m-%dT%H:%M:%SZ"


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=None)


def _text_cells(df: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for col in columns:
        s = df[col.name]
        if col.kind == "time":
            out[col.name] = pd.to_datetime(s).dt.strftime(ISO).fillna("")
        elif col.kind == "string":
            out[col.name] = s.fillna("").astype(str)
        elif col.kind == "flag":
            out[col.name] = s.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            out[col.name] = s.map(lambda v: "NaN" if pd.isna(v) else repr(float(v)))
    return out


def _units(col: Column) -> str:
    return "UTC" if col.kind == "time" else (col.units or "")


def to_csv(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """ERDDAP .csv: a row of names, a row of units, then the data."""
    cells = _text_cells(_frame(table), columns)
    buf = io.StringIO()
    header = pd.DataFrame([[_units(c) for c in columns]], columns=[c.name for c in columns])
    pd.concat([header, cells]).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def to_csvp(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """ERDDAP .csvp: one header row of `name (units)`, as erddapy's to_pandas() reads it."""
    cells = _text_cells(_frame(table), columns)
    cells.columns = [f"{c.name} ({_units(c)})" if _units(c) else c.name for c in columns]
    return cells.to_csv(index=False, lineterminator="\n").encode()


def _json_value(col: Column, v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if col.kind == "time":
        return pd.Timestamp(v).strftime(ISO)
    if col.kind == "flag":
        return int(v)
    return v


def _rows(table: pa.Table, columns: list[Column]) -> list[list[Any]]:
    data = [table.column(c.name).to_pylist() for c in columns]
    return [
        [_json_value(c, v) for c, v in zip(columns, row, strict=True)]
        for row in zip(*data, strict=True)
    ]


def to_json(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """ERDDAP .json: {"table": {columnNames, columnTypes, columnUnits, rows}}."""
    doc = {
        "table": {
            "columnNames": [c.name for c in columns],
            "columnTypes": [c.erddap_type if c.kind != "time" else "String" for c in columns],
            "columnUnits": [_units(c) or None for c in columns],
            "rows": _rows(table, columns),
        }
    }
    return json.dumps(doc).encode()


def to_geojson(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """ERDDAP .geoJson: one Point feature per row; needs longitude and latitude selected."""
    names = [c.name for c in columns]
    if "longitude" not in names or "latitude" not in names:
        raise RequestError(".geoJson needs longitude and latitude among the requested variables")
    features = []
    props = [c for c in columns if c.name not in ("longitude", "latitude")]
    for row in _rows(table, columns):
        values = dict(zip(names, row, strict=True))
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [values["longitude"], values["latitude"]],
                },
                "properties": {c.name: values[c.name] for c in props},
            }
        )
    doc = {
        "type": "FeatureCollection",
        "propertyNames": [c.name for c in props],
        "propertyUnits": [_units(c) or None for c in props],
        "features": features,
    }
    return json.dumps(doc).encode()


def to_html_table(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """ERDDAP .htmlTable: a page with one table, names and units in the header."""
    cells = _text_cells(_frame(table), columns)
    head = "".join(f"<th>{html.escape(c.name)}</th>" for c in columns)
    units = "".join(f"<th>{html.escape(_units(c))}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in cells.itertuples(index=False)
    )
    title = html.escape(str(meta.get("title", meta.get("dataset_id", ""))))
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><table class='erd commonBGColor nowrap'>"
        f"<tr>{head}</tr><tr>{units}</tr>\n{body}</table></body></html>"
    )
    return page.encode()


#: What a tabledap column is in a CF timeSeries file; the rest are data (values and flags).
_ROLES: dict[str, Role] = {
    "station": "station",
    "longitude": "instance",
    "latitude": "instance",
    "z": "coordinate",
    "time": "coordinate",
}


def _nc_attrs(col: Column) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(col.attrs)
    if col.units:
        attrs["units"] = col.units
    if col.name == "station":
        attrs["ioos_category"] = "Identifier"  # as ERDDAP marks the station id in its files
    return attrs


def to_nccf(table: pa.Table, columns: list[Column], meta: dict[str, Any]) -> bytes:
    """CF DSG timeSeries as a contiguous ragged array (what ERDDAP's .ncCF gives).

    Station, longitude and latitude live on the `timeseries` dimension, `rowSize` says how many
    observations each station has, everything else is on `obs`.
    """
    names = {c.name for c in columns}
    for needed in ("station", "time"):
        if needed not in names:
            raise RequestError(f".ncCF needs {needed!r} among the requested variables")
    variables = [
        NcVariable(c.name, c.kind, _ROLES.get(c.name, "data"), _nc_attrs(c)) for c in columns
    ]
    attrs = {
        "featureType": "TimeSeries",  # ERDDAP's spelling, which its clients compare against
        "cdm_timeseries_variables": "station,longitude,latitude",
        "Conventions": f"{CONVENTIONS}, COARDS",
        "id": str(meta.get("dataset_id", "")),
        **{k: v for k, v in meta.items() if v and isinstance(v, str)},
    }
    return observations_to_netcdf(_frame(table), variables, attrs, layout="ragged")


Renderer = Callable[[pa.Table, list[Column], dict[str, Any]], bytes]
RENDERERS: dict[str, Renderer] = {
    "csv": to_csv,
    "csvp": to_csvp,
    "json": to_json,
    "geoJson": to_geojson,
    "htmlTable": to_html_table,
    "nc": to_nccf,
    "ncCF": to_nccf,
}
#: Extension -> (renderer, media type): what tabledap offers.
FORMATS: dict[str, tuple[Renderer, str]] = {
    fmt: (render, MEDIA_TYPES[fmt]) for fmt, render in RENDERERS.items()
}
