"""FastAPI dependencies shared by the tile, WMS and preview routes, bound to one lake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Path, Query
from rio_tiler.colormap import cmap as default_cmap
from titiler.core.dependencies import ImageRenderingParams

from lake.errors import NotFound, RequestError
from lake.grids import GridStore
from lake.storage import Storage
from tiles.styles import Style, style_for

DatasetId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="Grid dataset id")]


def lookup_style(storage: Storage, dataset_id: str, variable: str) -> Style:
    """The default style of a grid variable; 404 if the grid or variable is unknown."""
    ds = GridStore(storage, dataset_id).open()
    if variable not in ds.data_vars:
        known = sorted(str(v) for v in ds.data_vars)
        raise NotFound(f"grid {dataset_id} has no variable {variable!r}; it has {known}")
    return style_for(ds[variable])


def make_path_dependency() -> Callable[..., str]:
    def dataset_path(dataset_id: DatasetId) -> str:
        """The tiler's `src_path` is the dataset id; the reader resolves it in the lake."""
        return dataset_id

    return dataset_path


def make_colormap_dependency(storage: Storage) -> Callable[..., Any]:
    """`colormap_name` if given, else the variable's CF style colormap."""

    def colormap(
        dataset_id: DatasetId,
        variable: Annotated[str, Query(description="Variable name")],
        colormap_name: Annotated[
            str | None, Query(description="Colormap name (default: by CF standard name)")
        ] = None,
    ) -> Any:
        name = colormap_name or lookup_style(storage, dataset_id, variable).colormap
        try:
            return default_cmap.get(name)
        except Exception:
            raise RequestError(
                f"unknown colormap {name!r}; known: {', '.join(default_cmap.list())}"
            ) from None

    return colormap


def make_render_dependency(storage: Storage) -> Callable[..., ImageRenderingParams]:
    """`rescale` if given, else the variable's default range; the rest as titiler has it."""

    def render(
        dataset_id: DatasetId,
        variable: Annotated[str, Query(description="Variable name")],
        rescale: Annotated[
            list[str] | None, Query(description="min,max (default: by CF standard name)")
        ] = None,
        color_formula: Annotated[str | None, Query()] = None,
        add_mask: Annotated[bool | None, Query(alias="return_mask")] = None,
    ) -> ImageRenderingParams:
        if not rescale:
            rescale = [lookup_style(storage, dataset_id, variable).rescale]
        return ImageRenderingParams(rescale=rescale, color_formula=color_formula, add_mask=add_mask)

    return render
