"""Draw a grid variable over a bounding box as a PNG: used by WMS GetMap and the previews."""

from __future__ import annotations

from dataclasses import dataclass

from rasterio.crs import CRS
from rio_tiler.colormap import cmap as default_cmap
from rio_tiler.errors import TileOutsideBounds

from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from lake.storage import Storage
from lake.times import parse_time
from tiles.bounds import check_bbox, check_image_size, check_number
from tiles.reader import make_reader
from tiles.styles import Style, style_for


@dataclass(frozen=True)
class MapRequest:
    """One picture: which grid and variable, where, how big, when and at what depth."""

    dataset_id: str
    variable: str
    bbox: tuple[float, float, float, float] | None = None  # in `crs`; None: whole grid
    crs: str = "EPSG:4326"
    width: int = 512
    height: int = 512
    time: str | None = None
    elevation: float | None = None
    colormap: str | None = None
    vmin: float | None = None
    vmax: float | None = None


def resolve_style(storage: Storage, req: MapRequest) -> Style:
    ds = GridStore(storage, req.dataset_id).open()
    if req.variable not in ds.data_vars:
        raise NotFound(f"grid {req.dataset_id} has no variable {req.variable!r}")
    base = style_for(ds[req.variable])
    return Style(
        req.colormap or base.colormap,
        base.vmin if req.vmin is None else req.vmin,
        base.vmax if req.vmax is None else req.vmax,
    )


def _selectors(storage: Storage, req: MapRequest) -> list[str]:
    ds = GridStore(storage, req.dataset_id).open()
    dims = ds[req.variable].dims
    sel: list[str] = []
    if req.time and "time" in dims:
        sel.append(f"time=nearest::{req.time.replace('Z', '')}")
    if req.elevation is not None:
        depth = next((d for d in dims if d in ("depth", "z", "lev", "altitude", "s_rho")), None)
        if depth:
            sel.append(f"{depth}=nearest::{req.elevation}")
    return sel


def render_map(storage: Storage, req: MapRequest) -> bytes:
    """The PNG: values rescaled to the style's range and coloured; no-data transparent."""
    check_image_size(req.width, req.height)
    if req.bbox is not None:  # checked before rasterio reprojects it
        check_bbox(req.bbox, req.crs)
    if req.time:
        parse_time(req.time, "time")
    if req.elevation is not None:
        check_number(req.elevation, "elevation")
    if req.colormap and req.colormap not in default_cmap.list():
        raise RequestError(f"colormap {req.colormap[:40]!r} is not known")
    style = resolve_style(storage, req)
    reader_cls = make_reader(storage)
    crs = CRS.from_user_input(req.crs)
    with reader_cls(req.dataset_id, variable=req.variable, sel=_selectors(storage, req)) as r:
        if req.bbox is None:
            # The whole grid, longest side at the requested size (coarse grids are scaled
            # up, so a 2° global field still makes a readable picture).
            w, s, e, n = r.bounds
            longest = max(req.width, req.height)
            ratio = (e - w) / max(n - s, 1e-9)
            width = longest if ratio >= 1 else max(1, round(longest * ratio))
            height = longest if ratio < 1 else max(1, round(longest / ratio))
            img = r.part(
                (w, s, e, n),
                dst_crs=r.crs,
                bounds_crs=r.crs,
                width=width,
                height=height,
                max_size=None,
            )
        else:
            try:
                img = r.part(
                    req.bbox,
                    dst_crs=crs,
                    bounds_crs=crs,
                    width=req.width,
                    height=req.height,
                    max_size=None,
                )
            except TileOutsideBounds:
                return empty_png(req.width, req.height)
    img.rescale(in_range=((style.vmin, style.vmax),))
    return img.render(img_format="PNG", colormap=default_cmap.get(style.colormap))


def empty_png(width: int, height: int) -> bytes:
    """A fully transparent picture (a WMS map outside the grid)."""
    import numpy as np
    from rio_tiler.models import ImageData

    data = np.ma.masked_all((1, height, width), dtype="uint8")
    return ImageData(data).render(img_format="PNG")
