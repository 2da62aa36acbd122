"""How big a NetCDF (or any xarray dataset) becomes once decoded, checked before it is loaded.

A compressed or sparse file of a few hundred kilobytes can declare variables of gigabytes
(chunks of fill values compress to almost nothing); loading it would take the harvester's
memory. The declared sizes are known from the header alone, so the check costs nothing.
"""

from __future__ import annotations

import xarray as xr

from lake.errors import ParseError
from lake.settings import get_settings


def decoded_bytes(ds: xr.Dataset) -> int:
    """Bytes every variable of `ds` would take in memory, from shapes and types alone."""
    return int(sum(v.size * v.dtype.itemsize for v in ds.variables.values()))


def check_decoded_size(
    ds: xr.Dataset, *, source: str, url: str, limit: int | None = None
) -> xr.Dataset:
    """`ds` if it decodes to at most `limit` bytes (LAKE_NETCDF_MAX_DECODED_BYTES by
    default); ParseError naming the stream, the URL and both sizes otherwise."""
    limit = get_settings().netcdf_max_decoded_bytes if limit is None else limit
    size = decoded_bytes(ds)
    if size > limit:
        raise ParseError(
            source=source,
            url=url,
            what=f"the NetCDF decodes to {size / 2**30:,.2f} GB, more than the "
            f"{limit / 2**30:,.2f} GB allowed (LAKE_NETCDF_MAX_DECODED_BYTES); not loaded",
        )
    return ds
