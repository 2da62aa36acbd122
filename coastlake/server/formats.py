"""The file types the server answers in: extension -> media type, one table for every endpoint.

Each endpoint offers a few of them (`offered`), so a media type is spelled once however many
routes hand out that type of file.
"""

from __future__ import annotations

MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "csvp": "text/csv; charset=utf-8",  # ERDDAP: csv with `name (units)` headers
    "json": "application/json",
    "geojson": "application/geo+json",
    "geoJson": "application/geo+json",  # ERDDAP spells it so
    "html": "text/html; charset=utf-8",
    "htmlTable": "text/html; charset=utf-8",  # ERDDAP
    "nc": "application/x-netcdf",
    "ncCF": "application/x-netcdf",  # ERDDAP: CF discrete sampling geometry
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
    "shp.zip": "application/zip",
}


def offered(*extensions: str) -> dict[str, str]:
    """The media types of `extensions`, in that order: what one endpoint offers.

    KeyError for an extension the table lacks; endpoints call this when their module is
    imported, so a misspelt extension stops the server from starting instead of failing a
    request.
    """
    return {ext: MEDIA_TYPES[ext] for ext in extensions}
