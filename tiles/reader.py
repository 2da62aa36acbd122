"""The TiTiler reader over the lake's grids: opens a dataset by id from its Icechunk repository.

Clients never hand the tiler a URL to open: the path carries a dataset id, and the reader
resolves it in the lake the app was built for. Without a `sel` on time the newest time is
drawn, and without one on depth the level nearest the surface, so a bare tile URL is a map
of "now".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attr
import numpy as np
import xarray as xr
from rio_tiler.io.xarray import XarrayReader
from titiler.xarray.io import Reader, get_variable

from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from lake.storage import Storage

SPATIAL_DIMS = ("lat", "latitude", "lon", "longitude", "y", "x")


def make_opener(storage: Storage) -> Callable[..., xr.Dataset]:
    """An opener for titiler: `src_path` is a dataset id in `storage`."""

    def opener(src_path: str, group: str | None = None, **_: Any) -> xr.Dataset:
        return GridStore(storage, src_path).open(group=group)

    return opener


def default_selectors(ds: xr.Dataset, variable: str, sel: list[str] | None) -> list[str]:
    """`sel` plus the newest time and the shallowest level when the client gave none."""
    # Times come from WMS/WMTS clients as ISO with a "Z"; numpy wants them without a zone.
    sel = [s[:-1] if s.startswith("time=") and s.endswith("Z") else s for s in sel or []]
    given = {s.split("=", 1)[0] for s in sel}
    if variable not in ds:
        return sel
    da = ds[variable]
    for dim in da.dims:
        if dim in SPATIAL_DIMS or dim in given:
            continue
        values = ds[dim].values if dim in ds.coords else None
        if values is None or values.size == 0:
            continue
        if np.issubdtype(values.dtype, np.datetime64):
            sel.append(f"{dim}={np.datetime_as_string(values.max(), unit='s')}")
        else:
            sel.append(f"{dim}=nearest::{float(np.abs(values).min()) if values.size else 0}")
    return sel


#: Prepared (sliced, CRS-tagged, loaded) variables by (dataset object, variable, selectors).
_PREPARED: OrderedDict[tuple[int, str, tuple[str, ...]], tuple[xr.Dataset, xr.DataArray]] = (
    OrderedDict()
)
_PREPARED_LOCK = threading.Lock()
MAX_PREPARED = 16
#: Variables up to this size are held in memory between requests; larger ones stay lazy.
MAX_LOADED_BYTES = 64 * 2**20


def prepared_variable(ds: xr.Dataset, variable: str, sel: list[str]) -> xr.DataArray:
    """titiler's `get_variable` result, cached per opened dataset (= per snapshot)."""
    key = (id(ds), variable, tuple(sel))
    with _PREPARED_LOCK:
        hit = _PREPARED.get(key)
        if hit is not None and hit[0] is ds:
            _PREPARED.move_to_end(key)
            return hit[1]
    da = get_variable(ds, variable, sel=sel)
    if da.nbytes <= MAX_LOADED_BYTES:
        da = da.load()
    with _PREPARED_LOCK:
        _PREPARED[key] = (ds, da)
        while len(_PREPARED) > MAX_PREPARED:
            _PREPARED.popitem(last=False)
    return da


def make_reader(storage: Storage) -> type[Reader]:
    """A Reader class bound to one lake (attrs subclass, as titiler expects)."""
    opener_fn = make_opener(storage)

    @attr.s
    class LakeReader(Reader):
        opener: Callable[..., xr.Dataset] = attr.ib(default=opener_fn)

        def __attrs_post_init__(self) -> None:
            # titiler's Reader opens the dataset and slices the variable on every request;
            # here both come from caches keyed by the Icechunk snapshot, so a warm tile only
            # clips and warps an in-memory array.
            self.ds = self.opener(self.src_path, group=self.group)
            if self.variable not in self.ds.data_vars:
                known = sorted(str(v) for v in self.ds.data_vars)
                raise NotFound(
                    f"grid {self.src_path} has no variable {self.variable!r}; it has {known}"
                )
            self.sel = default_selectors(self.ds, self.variable, self.sel)
            try:
                self.input = prepared_variable(self.ds, self.variable, self.sel)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                # A selector naming no dimension, or a time or level that is no value.
                raise RequestError(f"sel {self.sel}: {str(exc)[:200]}") from None
            XarrayReader.__attrs_post_init__(self)

        def close(self) -> None:
            """The dataset is shared through the lake's open cache; nothing to close."""

    return LakeReader
