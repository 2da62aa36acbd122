"""PNG previews of every grid layer: a picture for users without GIS tools."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from lake.errors import NotFound
from lake.grids import GridStore, list_grids
from lake.storage import Storage
from tiles.deps import DatasetId
from tiles.render import MapRequest, render_map


def preview_router(storage: Storage) -> APIRouter:
    """`/tiles` (the grid list) and `/tiles/{dataset_id}/{variable}/preview.png`."""
    router = APIRouter()

    @router.get("", summary="Grids in the lake and their layers")
    def grids() -> list[dict[str, object]]:
        return [
            {
                "dataset_id": g.dataset_id,
                "bbox": g.bbox,
                "time_start": g.time_start.isoformat() if g.time_start else None,
                "time_end": g.time_end.isoformat() if g.time_end else None,
                "runs": g.runs,
                "variables": [
                    {
                        "name": v.name,
                        "standard_name": v.standard_name,
                        "units": v.units,
                        "preview": f"/tiles/{g.dataset_id}/{v.name}/preview.png",
                        "tilejson": (
                            f"/tiles/{g.dataset_id}/WebMercatorQuad/tilejson.json?variable={v.name}"
                        ),
                    }
                    for v in g.variables
                ],
            }
            for g in list_grids(storage)
        ]

    @router.get(
        "/{dataset_id}/{variable}/preview.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        summary="A PNG picture of one layer over the whole grid",
    )
    def preview(
        dataset_id: DatasetId,
        variable: str,
        time: Annotated[str | None, Query(description="ISO time; default the newest")] = None,
        elevation: Annotated[float | None, Query(description="Depth; default surface")] = None,
        max_size: Annotated[int, Query(ge=16, le=2048)] = 800,
        colormap_name: str | None = None,
    ) -> Response:
        ds = GridStore(storage, dataset_id).open()
        if variable not in ds.data_vars:
            raise NotFound(f"grid {dataset_id} has no variable {variable!r}")
        png = render_map(
            storage,
            MapRequest(
                dataset_id,
                variable,
                width=max_size,
                height=max_size,
                time=time,
                elevation=elevation,
                colormap=colormap_name,
            ),
        )
        return Response(png, media_type="image/png")

    return router
