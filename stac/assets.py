"""STAC assets: where a dataset's bytes are and how to open them, built one way for every
collection and item kind.

Each dataset has its files in the lake (Delta table of Parquet, Icechunk Zarr, GeoParquet)
and the same data through our server (tabledap CSV, map tiles, GeoJSON); `asset` builds
the first kind and `server_asset` the second, so titles and hrefs read alike everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import pystac
from pystac.extensions.table import TableExtension

from lake.flags import FLAG_NAMES
from lake.tables import OBSERVATION_SCHEMA
from stac.describe import cf_parameter, public_url
from stac.extents import Parameter

PARQUET = "application/vnd.apache.parquet"
ZARR = "application/vnd.zarr; version=3"

#: What a table asset can belong to.
Owner = TypeVar("Owner", pystac.Item, pystac.Collection)

#: What a reader of the observations table needs to know beyond each column's type.
_COLUMN_NOTES = {
    "time": "UTC, no time zone stored",
    "variable": "CF standard name",
    "value": "in `units`; NULL in the `observations` view if QC failed",
    "qc_agg": "QARTOD aggregate flag: "
    + ", ".join(f"{v} {n.replace('_', ' ')}" for v, n in FLAG_NAMES.items()),
    "z": "height (+) or depth (-) in m",
}


def asset(
    href: str,
    media_type: str,
    title: str,
    *,
    description: str | None = None,
    roles: Sequence[str] = ("data",),
    extra_fields: dict[str, Any] | None = None,
) -> pystac.Asset:
    """One asset; `roles` says what it is for (STAC `data`, `tiles`, ...)."""
    return pystac.Asset(
        href=href,
        media_type=media_type,
        title=title,
        description=description,
        roles=list(roles),
        extra_fields=extra_fields,
    )


def server_asset(
    path: str,
    media_type: str,
    what: str,
    role: str = "data",
    extra_fields: dict[str, Any] | None = None,
) -> pystac.Asset:
    """The same data through our server: `path` under LAKE_PUBLIC_URL, titled so."""
    return asset(
        f"{public_url()}{path}",
        media_type,
        f"Through the server: {what}",
        roles=[role],
        extra_fields=extra_fields,
    )


def measured(params: Sequence[Parameter]) -> dict[str, Any]:
    """The CF extension's per-asset field: what a data asset measures (none if nothing)."""
    return {"cf:parameter": cf_parameter(params)} if params else {}


def opendap_asset(dataset_id: str, params: Sequence[Parameter]) -> pystac.Asset:
    """The grid over OPeNDAP, with xarray's arguments so that
    `xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])` opens it
    as written (the Icechunk store needs icechunk's own session, not a keyword)."""
    return server_asset(
        f"/grids/datasets/{dataset_id}/opendap",
        "application/vnd.opendap.dap2",
        "OPeNDAP (DAP2)",
        extra_fields={"xarray:open_kwargs": {"engine": "netcdf4"}, **measured(params)},
    )


def add_table_asset(
    owner: Owner,
    key: str,
    table: pystac.Asset,
    columns: list[dict[str, Any]],
) -> TableExtension[Owner]:
    """Add a Parquet asset with its columns (table extension); returns the owner's table
    extension, for the row count and geometry column where the owner knows them."""
    owner.add_asset(key, table)
    extension = TableExtension.ext(owner, add_if_missing=True)
    # pystac stores what it is given; Column objects would not serialize, dicts do.
    column_dicts: Any = columns
    TableExtension.ext(table).columns = column_dicts
    return extension


def observation_columns() -> list[dict[str, Any]]:
    """The observations table's columns for the table extension: name, type, and a note
    where the type alone does not say how to read the value."""
    return [
        {
            "name": f.name,
            "type": str(f.type),
            **({"description": _COLUMN_NOTES[f.name]} if f.name in _COLUMN_NOTES else {}),
        }
        for f in OBSERVATION_SCHEMA
    ]
