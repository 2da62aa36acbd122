"""One dataset as a STAC Collection with its Items, built from the registry and from what
the lake actually holds.

Extents come from the data (station positions, first and last observation, grid bounds),
never from the registry alone, so the catalog cannot claim data the lake does not have.
A registry stream whose `source.kind` is `external` is a reference to a feed hosted
elsewhere: its extent and parameters come from the registry and its one asset points at
the partner's service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pystac
from pystac.extensions.datacube import DatacubeExtension
from pystac.extensions.xarray_assets import XarrayAssetsExtension

from lake.registry import Stream
from lake.storage import Storage
from stac.assets import (
    PARQUET,
    ZARR,
    add_table_asset,
    asset,
    measured,
    observation_columns,
    opendap_asset,
)
from stac.describe import (
    CF_EXTENSION,
    EPOCH,
    SCIENTIFIC_EXTENSION,
    acdd,
    cf_parameter,
    intellectual_property,
    ioos_fields,
    is_external,
    keywords,
    license_fields,
    providers,
    public_url,
    registry_bbox,
    registry_parameters,
    taxa,
    union_bbox,
    when,
)
from stac.extents import GridExtent, LakeContents, Parameter, StationExtent, unique_parameters
from stac.items import grid_item, layer_item, station_item

_WORLD = [-180.0, -90.0, 180.0, 90.0]


def build_collection(
    stream: Stream, contents: LakeContents, storage: Storage
) -> tuple[pystac.Collection, list[pystac.Item]]:
    """One dataset as a Collection plus its Items (stations, grid runs or periods)."""
    stations = contents.stations.get(stream.id, [])
    grids = contents.grids.get(stream.id, [])
    items = [station_item(stream, s, storage) for s in stations]
    items += [grid_item(stream, g) for g in grids]
    items += [layer_item(stream, la) for la in contents.layers.get(stream.id, [])]
    params = unique_parameters(
        [p for s in stations for p in s.parameters] + [p for g in grids for p in g.parameters]
    ) or registry_parameters(stream)
    bbox = union_bbox(i.bbox for i in items if i.bbox) or registry_bbox(stream) or _WORLD
    start, end = _time_extent(stream, items)
    provider_attrs = _provider_attributes(stream, grids)
    license_id, license_note = license_fields(stream.license)
    collection = pystac.Collection(
        id=stream.id,
        title=stream.title,
        description=stream.summary or stream.title,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]])),
        license=license_id,
        keywords=keywords(stream, params),
        providers=providers(stream),
        extra_fields={
            **({"cf:parameter": cf_parameter(params)} if params else {}),
            "sci:citation": stream.citation or f"{stream.provider.name}: {stream.title}.",
            "coastlake:intellectual_property": intellectual_property(stream),
            "coastlake:license_text": license_note,
            "coastlake:kind": stream.kind.value,
            "coastlake:external": is_external(stream),
            "coastlake:taxa": taxa(stream),
            "coastlake:acdd": acdd(stream, params, bbox, start, end, provider_attrs),
            "coastlake:provider_metadata": provider_attrs,
            **ioos_fields(stream),
        },
        summaries=_summaries(stations, params),
    )
    collection.stac_extensions += (
        [CF_EXTENSION, SCIENTIFIC_EXTENSION] if params else [SCIENTIFIC_EXTENSION]
    )
    _add_links(collection, stream, license_id)
    _add_assets(collection, stream, stations, grids, storage)
    for item in items:
        collection.add_item(item)
    return collection, items


def _time_extent(
    stream: Stream, items: list[pystac.Item]
) -> tuple[datetime | None, datetime | None]:
    """First and last time of the items; the registry's `start`/`end` for a dataset with no
    dated items; the epoch as start if neither says anything (STAC needs one end known)."""
    starts = [i.common_metadata.start_datetime or i.datetime for i in items]
    ends = [i.common_metadata.end_datetime or i.datetime for i in items]
    starts_known: list[datetime] = [t for t in starts if t is not None]
    ends_known: list[datetime] = [t for t in ends if t is not None]
    start = min(starts_known) if starts_known else when(stream.source.params.get("start"))
    end = max(ends_known) if ends_known else when(stream.source.params.get("end"))
    if start is None and end is None:
        start = EPOCH
    return start, end


def _provider_attributes(stream: Stream, grids: list[GridExtent]) -> dict[str, Any]:
    """What the provider says about the dataset: grid global attributes, then the
    registry's `source.attributes`, which win."""
    attrs: dict[str, Any] = {}
    for g in grids:
        attrs.update(g.attributes)
    attrs.update(stream.source.params.get("attributes") or {})
    return attrs


def _summaries(stations: list[StationExtent], params: list[Parameter]) -> pystac.Summaries:
    """Platforms and CF parameters (the CF extension's summary), leaving out the empty ones."""
    summaries = {
        "platform": sorted({s.platform or "fixed station" for s in stations}),
        "cf:parameter": cf_parameter(params),
    }
    return pystac.Summaries({k: v for k, v in summaries.items() if v})


def _add_links(collection: pystac.Collection, stream: Stream, license_id: str) -> None:
    """The originator's terms when the license is not an SPDX id, and the Data Stream Plan."""
    if license_id == "other" and stream.provider.url:
        collection.add_link(
            pystac.Link("license", stream.provider.url, "text/html", "Terms of the originator")
        )
    if stream.data_stream_plan:
        collection.add_link(
            pystac.Link("describedby", stream.data_stream_plan, title="Data Stream Plan")
        )
    if not is_external(stream):
        # The plan the lake generates from the registry and what it holds (coastlake.server.plans).
        collection.add_link(
            pystac.Link(
                "describedby",
                f"{public_url()}/plans/{stream.id}.html",
                "text/html",
                "Data Stream Plan, generated from the registry and the lake",
            )
        )


def _add_assets(
    collection: pystac.Collection,
    stream: Stream,
    stations: list[StationExtent],
    grids: list[GridExtent],
    storage: Storage,
) -> None:
    """The dataset's data as a whole: the partner's service for an external feed, else the
    observations table (with every station) and the best-estimate grid."""
    if is_external(stream):
        collection.add_asset(
            "source",
            asset(
                str(stream.source.url),
                stream.source.params.get("media_type", "text/html"),
                f"Hosted by {stream.provider.name} (not copied into the lake)",
            ),
        )
        return
    if stations:
        observations = asset(
            storage.url("tables", "observations"),
            PARQUET,
            "Observations of every station (Delta Lake table of Parquet files)",
            description=f"Select dataset_id = '{stream.id}'.",
        )
        add_table_asset(collection, "observations", observations, observation_columns())
    for grid in grids[:1]:
        zarr = asset(
            grid.url,
            ZARR,
            "Icechunk repository of Zarr v3 (best estimate on branch main)",
            description="Open with icechunk (README, In a notebook), not a plain Zarr reader.",
            extra_fields=measured(grid.parameters),
        )
        collection.add_asset("zarr", zarr)
        collection.add_asset("opendap", opendap_asset(grid.dataset_id, grid.parameters))
        XarrayAssetsExtension.ext(collection, add_if_missing=True)
        collection.extra_fields["cube:dimensions"] = grid.dims
        collection.extra_fields["cube:variables"] = grid.variables
        DatacubeExtension.ext(collection, add_if_missing=True)
