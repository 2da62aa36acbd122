"""What the catalog says about each dataset: pystac Collections and Items built from the
registry and from what the lake actually holds.

Extents come from the data (station positions, first and last observation, grid bounds),
never from the registry alone, so the catalog cannot claim data the lake does not have.
Registry streams whose `source.kind` is `external` are references to feeds hosted
elsewhere (a partner's ERDDAP dataset we do not copy): they become collections whose extent
and parameters come from the registry and whose asset points at the partner's service.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pystac
from pystac.extensions.datacube import DatacubeExtension
from pystac.extensions.table import TableExtension
from pystac.extensions.xarray_assets import AssetXarrayAssetsExtension, XarrayAssetsExtension

from lake.registry import Kind, Stream
from lake.storage import Storage

log = logging.getLogger(__name__)

EXTERNAL_KIND = "external"
CF_EXTENSION = "https://stac-extensions.github.io/cf/v0.2.0/schema.json"
SCIENTIFIC_EXTENSION = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
PARQUET = "application/vnd.apache.parquet"
ZARR = "application/vnd.zarr; version=3"
CF_VOCABULARY = "CF Standard Name Table v92"
DISTRIBUTOR = "coastlake regional ocean data lake"
_SPDX = re.compile(r"^[\w\-.+]+$")
_WORLD = [-180.0, -90.0, 180.0, 90.0]


def public_url() -> str:
    """Base URL of the server the catalog's `server` hrefs point at (LAKE_PUBLIC_URL)."""
    return os.environ.get("LAKE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")


def is_external(stream: Stream) -> bool:
    """True for a catalog-only reference to a feed we do not harvest."""
    return stream.source.kind == EXTERNAL_KIND


@dataclass(frozen=True)
class Parameter:
    """A measured quantity: its CF standard name and canonical units."""

    name: str
    unit: str | None


@dataclass(frozen=True)
class StationExtent:
    """One station as the lake knows it: metadata row plus observation extents."""

    dataset_id: str
    station_id: str
    name: str | None
    lon: float
    lat: float
    wmo_id: str | None
    platform: str | None
    provider: str | None
    attributes: dict[str, Any]
    start: datetime
    end: datetime
    z_min: float | None
    z_max: float | None
    rows: int
    parameters: tuple[Parameter, ...]


@dataclass(frozen=True)
class GridExtent:
    """One grid as the grid store reports it (a dataset, or one model run)."""

    dataset_id: str
    item_id: str
    url: str
    bbox: list[float]
    start: datetime | None
    end: datetime | None
    parameters: tuple[Parameter, ...]
    dims: dict[str, dict[str, Any]]
    variables: dict[str, dict[str, Any]]
    attributes: dict[str, Any]
    title: str = ""


@dataclass(frozen=True)
class LayerExtent:
    """A static GIS layer (GeoParquet) as the layer store reports it."""

    dataset_id: str
    url: str
    bbox: list[float]
    features: int
    geometry_types: list[str]
    columns: list[str]
    title: str
    source: str
    ingested_at: datetime | None


@dataclass
class LakeContents:
    """Everything the catalog reads from the lake, gathered once per build."""

    stations: dict[str, list[StationExtent]] = field(default_factory=dict)
    grids: dict[str, list[GridExtent]] = field(default_factory=dict)
    layers: dict[str, list[LayerExtent]] = field(default_factory=dict)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat().replace("+00:00", "Z")


def station_item_id(station_id: str) -> str:
    """Item id of a station: the IOOS URN's authority and label ('wmo-44013')."""
    parts = station_id.split(":")
    if len(parts) >= 5 and parts[0] == "urn":
        return f"{parts[3]}-{':'.join(parts[4:])}".replace(":", "-")
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", station_id)


def license_fields(text: str) -> tuple[str, str | None]:
    """(STAC license, free-text note): STAC wants an SPDX id or 'other'."""
    text = text.strip()
    if text and _SPDX.match(text):
        return text, None
    return "other", text or None


def _intellectual_property(stream: Stream) -> str:
    license_id, note = license_fields(stream.license)
    parts = [f"License: {note or license_id}."]
    parts.append(f"Originator: {stream.provider.name}, who keeps the rights the license grants.")
    if stream.citation:
        parts.append(f"Cite as: {stream.citation}")
    if not stream.retention.keep:
        parts.append("The provider's terms forbid keeping copies: served, never stored.")
    return " ".join(parts)


def _providers(stream: Stream) -> list[pystac.Provider]:
    originator = pystac.Provider(
        name=stream.provider.name,
        description="originator",
        roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR],
        url=stream.provider.url,
    )
    if is_external(stream):
        return [originator]
    distributor = pystac.Provider(
        name=DISTRIBUTOR,
        description="distributor: harvests, quality-controls (QARTOD) and serves the data",
        roles=[pystac.ProviderRole.PROCESSOR, pystac.ProviderRole.HOST],
        url=public_url(),
    )
    return [originator, distributor]


def registry_parameters(stream: Stream) -> list[Parameter]:
    """Parameters the registry declares for a stream (used where the lake has no data)."""
    declared = stream.source.params.get("parameters") or []
    params = [Parameter(v.standard_name, v.units) for v in stream.variables]
    for p in declared:
        if isinstance(p, Mapping):
            params.append(Parameter(str(p["name"]), p.get("unit")))
        else:
            params.append(Parameter(str(p), None))
    return _unique(params)


def _unique(params: Iterable[Parameter]) -> list[Parameter]:
    seen: dict[str, Parameter] = {}
    for p in params:
        seen.setdefault(p.name, p)
    return sorted(seen.values(), key=lambda p: p.name)


def _cf_parameter(params: Iterable[Parameter]) -> list[dict[str, Any]]:
    return [{"name": p.name, "unit": p.unit} if p.unit else {"name": p.name} for p in params]


def _taxa(stream: Stream) -> list[dict[str, Any]]:
    """ITIS taxa a biological stream declares (`source.itis: [{tsn, name}]`)."""
    out = []
    for taxon in stream.source.params.get("itis") or []:
        tsn = str(taxon["tsn"])
        out.append(
            {
                "tsn": tsn,
                "name": taxon.get("name"),
                "url": "https://www.itis.gov/servlet/SingleRpt/SingleRpt"
                f"?search_topic=TSN&search_value={tsn}",
            }
        )
    return out


def _keywords(stream: Stream, params: Iterable[Parameter], taxa: list[dict[str, Any]]) -> list[str]:
    words = [*stream.keywords, *(p.name for p in params), stream.category.value]
    words += [stream.kind.value, stream.provider.name]
    words += [t["name"] for t in taxa if t.get("name")]
    return list(dict.fromkeys(w for w in words if w))


def _acdd(
    stream: Stream,
    params: list[Parameter],
    bbox: list[float],
    start: datetime | None,
    end: datetime | None,
    provider_attrs: Mapping[str, Any],
) -> dict[str, Any]:
    """ACDD-1.3 global attributes for the dataset; the provider's own values win where set."""
    license_id, note = license_fields(stream.license)
    acdd: dict[str, Any] = {
        "id": stream.id,
        "naming_authority": "coastlake",
        "title": stream.title,
        "summary": stream.summary or stream.title,
        "keywords": ", ".join(_keywords(stream, params, _taxa(stream))),
        "keywords_vocabulary": CF_VOCABULARY,
        "standard_name_vocabulary": CF_VOCABULARY,
        "license": note or license_id,
        "creator_name": stream.provider.name,
        "creator_url": stream.provider.url,
        "creator_email": stream.provider.email,
        "publisher_name": DISTRIBUTOR,
        "references": stream.citation or None,
        "cdm_data_type": "Grid" if stream.kind is Kind.grid else "TimeSeries",
        "featureType": None if stream.kind is Kind.grid else "timeSeries",
        "geospatial_lon_min": bbox[0],
        "geospatial_lat_min": bbox[1],
        "geospatial_lon_max": bbox[2],
        "geospatial_lat_max": bbox[3],
        "time_coverage_start": _iso(start),
        "time_coverage_end": _iso(end),
    }
    for key, value in provider_attrs.items():
        if key in acdd and value not in (None, ""):
            acdd[key] = value
    return {k: v for k, v in acdd.items() if v is not None}


def _ioos(stream: Stream) -> dict[str, Any]:
    return {
        "ioos:category": stream.category.value,
        "ioos:qc_path": stream.category.qc_path,
        "ioos:data_stream_plan": stream.data_stream_plan,
        "ioos:cadence_s": int(stream.cadence.total_seconds()),
        "ioos:ncei_archive": stream.archive.ncei,
    }


def _union_bbox(boxes: Iterable[list[float]]) -> list[float] | None:
    boxes = list(boxes)
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _registry_bbox(stream: Stream) -> list[float] | None:
    bbox = stream.source.params.get("bbox")
    if bbox:
        return [float(v) for v in bbox]
    pts = [
        (float(s["lon"]), float(s["lat"]))
        for s in stream.source.params.get("stations") or []
        if isinstance(s, Mapping) and s.get("lon") is not None and s.get("lat") is not None
    ]
    if not pts:
        return None
    return [
        min(p[0] for p in pts),
        min(p[1] for p in pts),
        max(p[0] for p in pts),
        max(p[1] for p in pts),
    ]


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _station_item(stream: Stream, st: StationExtent, storage: Storage) -> pystac.Item:
    params = list(st.parameters)
    item = pystac.Item(
        id=station_item_id(st.station_id),
        geometry={"type": "Point", "coordinates": [st.lon, st.lat]},
        bbox=[st.lon, st.lat, st.lon, st.lat],
        datetime=None,
        start_datetime=_utc(st.start),
        end_datetime=_utc(st.end),
        properties={
            "title": f"{st.name or st.station_id} ({stream.title})",
            "description": f"Time series at station {st.station_id} from {stream.provider.name}.",
            "keywords": _keywords(stream, params, _taxa(stream)),
            "platform": st.platform or "fixed station",
            "providers": [p.to_dict() for p in _providers(stream)],
            "license": license_fields(stream.license)[0],
            "cf:parameter": _cf_parameter(params),
            "ioos:station_urn": st.station_id,
            "ioos:wmo_id": st.wmo_id,
            "ioos:platform": st.platform,
            **_ioos(stream),
            "coastlake:rows": st.rows,
            "coastlake:z_range_m": [st.z_min, st.z_max],
            "coastlake:provider_metadata": st.attributes,
        },
        collection=stream.id,
    )
    item.stac_extensions.append(CF_EXTENSION)
    table_href = storage.url("tables", "observations")
    asset = pystac.Asset(
        href=table_href,
        media_type=PARQUET,
        title="Observations (Delta Lake table of Parquet files)",
        description=(
            f"Long rows; select dataset_id = '{stream.id}' AND station_id = '{st.station_id}'. "
            "Read with deltalake, DuckDB delta_scan or dask-deltatable."
        ),
        roles=["data"],
        extra_fields={
            "coastlake:filter": {"dataset_id": stream.id, "station_id": st.station_id},
        },
    )
    item.add_asset("observations", asset)
    TableExtension.ext(item, add_if_missing=True)
    TableExtension.ext(asset).columns = _table_columns()  # type: ignore[assignment]
    item.add_asset(
        "csv",
        pystac.Asset(
            href=f"{public_url()}/erddap/tabledap/{stream.id}.csv",
            media_type="text/csv",
            title="Through the server: ERDDAP-style tabledap CSV",
            roles=["data"],
        ),
    )
    return item


def _table_columns() -> list[dict[str, Any]]:
    from lake.tables import OBSERVATION_SCHEMA

    descriptions = {
        "time": "UTC, no time zone stored",
        "variable": "CF standard name",
        "value": "in `units`; NULL in the `observations` view if QC failed",
        "qc_agg": "QARTOD aggregate flag: 1 pass, 2 not evaluated, 3 suspect, 4 fail, 9 missing",
        "z": "height (+) or depth (-) in m",
    }
    return [
        {
            "name": f.name,
            "type": str(f.type),
            **({"description": descriptions[f.name]} if f.name in descriptions else {}),
        }
        for f in OBSERVATION_SCHEMA
    ]


def _grid_item(stream: Stream, grid: GridExtent, storage: Storage) -> pystac.Item:
    bbox = grid.bbox
    geometry = {
        "type": "Polygon",
        "coordinates": [
            [
                [bbox[0], bbox[1]],
                [bbox[2], bbox[1]],
                [bbox[2], bbox[3]],
                [bbox[0], bbox[3]],
                [bbox[0], bbox[1]],
            ]
        ],
    }
    start = grid.start or datetime(1970, 1, 1, tzinfo=UTC)
    item = pystac.Item(
        id=grid.item_id,
        geometry=geometry,
        bbox=bbox,
        datetime=None,
        start_datetime=_utc(start),
        end_datetime=_utc(grid.end or start),
        properties={
            "title": grid.title or stream.title,
            "description": stream.summary or stream.title,
            "keywords": _keywords(stream, grid.parameters, _taxa(stream)),
            "providers": [p.to_dict() for p in _providers(stream)],
            "license": license_fields(stream.license)[0],
            "cf:parameter": _cf_parameter(grid.parameters),
            **_ioos(stream),
            "coastlake:provider_metadata": grid.attributes,
        },
        collection=stream.id,
    )
    item.stac_extensions.append(CF_EXTENSION)
    DatacubeExtension.ext(item, add_if_missing=True)
    item.properties["cube:dimensions"] = grid.dims
    item.properties["cube:variables"] = grid.variables
    item.add_asset(
        "zarr",
        pystac.Asset(
            href=grid.url,
            media_type=ZARR,
            title="Icechunk repository of Zarr v3 (branch main)",
            roles=["data"],
            extra_fields={
                "coastlake:open": "icechunk.Repository.open(...).readonly_session('main').store"
            },
        ),
    )
    item.add_asset(
        "tiles",
        pystac.Asset(
            href=f"{public_url()}/tiles/{stream.id}/WebMercatorQuad/tilejson.json",
            media_type="application/json",
            title="Through the server: map tiles (TileJSON)",
            roles=["tiles"],
        ),
    )
    return item


def _layer_item(stream: Stream, layer: LayerExtent) -> pystac.Item:
    b = layer.bbox
    item = pystac.Item(
        id=layer.dataset_id,
        geometry={
            "type": "Polygon",
            "coordinates": [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]],
        },
        bbox=b,
        datetime=layer.ingested_at or datetime(1970, 1, 1, tzinfo=UTC),
        properties={
            "title": layer.title or stream.title,
            "description": stream.summary or stream.title,
            "keywords": _keywords(stream, [], _taxa(stream)),
            "license": license_fields(stream.license)[0],
            "coastlake:geometry_types": layer.geometry_types,
            "coastlake:source": layer.source,
            **_ioos(stream),
        },
        collection=stream.id,
    )
    asset = pystac.Asset(
        href=layer.url,
        media_type=PARQUET,
        title="GeoParquet (EPSG:4326)",
        roles=["data"],
    )
    item.add_asset("geoparquet", asset)
    table = TableExtension.ext(item, add_if_missing=True)
    table.row_count = layer.features
    table.primary_geometry = "geometry"
    # pystac stores what it is given; Column objects would not serialize, dicts do.
    layer_columns: Any = [{"name": c} for c in [*layer.columns, "geometry"]]
    TableExtension.ext(asset).columns = layer_columns
    item.add_asset(
        "geojson",
        pystac.Asset(
            href=f"{public_url()}/data/layers/{layer.dataset_id}.geojson",
            media_type="application/geo+json",
            title="Through the server: GeoJSON",
            roles=["data"],
        ),
    )
    return item


def build_collection(
    stream: Stream, contents: LakeContents, storage: Storage
) -> tuple[pystac.Collection, list[pystac.Item]]:
    """One dataset as a Collection plus its Items (stations, grid runs or periods)."""
    stations = contents.stations.get(stream.id, [])
    grids = contents.grids.get(stream.id, [])
    items = [_station_item(stream, s, storage) for s in stations]
    items += [_grid_item(stream, g, storage) for g in grids]
    items += [_layer_item(stream, la) for la in contents.layers.get(stream.id, [])]
    params = _unique(
        [p for s in stations for p in s.parameters] + [p for g in grids for p in g.parameters]
    ) or registry_parameters(stream)
    bbox = _union_bbox(i.bbox for i in items if i.bbox) or _registry_bbox(stream) or _WORLD
    starts = [i.common_metadata.start_datetime or i.datetime for i in items]
    ends = [i.common_metadata.end_datetime or i.datetime for i in items]
    starts_known: list[datetime] = [t for t in starts if t is not None]
    ends_known: list[datetime] = [t for t in ends if t is not None]
    start = min(starts_known) if starts_known else _when(stream.source.params.get("start"))
    end = max(ends_known) if ends_known else _when(stream.source.params.get("end"))
    if start is None and end is None:
        start = datetime(1970, 1, 1, tzinfo=UTC)
    taxa = _taxa(stream)
    provider_attrs: dict[str, Any] = {}
    for g in grids:
        provider_attrs.update(g.attributes)
    provider_attrs.update(stream.source.params.get("attributes") or {})
    license_id, license_note = license_fields(stream.license)
    collection = pystac.Collection(
        id=stream.id,
        title=stream.title,
        description=stream.summary or stream.title,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]])),
        license=license_id,
        keywords=_keywords(stream, params, taxa),
        providers=_providers(stream),
        extra_fields={
            "cf:parameter": _cf_parameter(params),
            "sci:citation": stream.citation or f"{stream.provider.name}: {stream.title}.",
            "coastlake:intellectual_property": _intellectual_property(stream),
            "coastlake:license_text": license_note,
            "coastlake:kind": stream.kind.value,
            "coastlake:external": is_external(stream),
            "coastlake:taxa": taxa,
            "coastlake:acdd": _acdd(stream, params, bbox, start, end, provider_attrs),
            "coastlake:provider_metadata": provider_attrs,
            **_ioos(stream),
        },
        summaries=pystac.Summaries(
            {
                k: v
                for k, v in {
                    "platform": sorted({s.platform or "fixed station" for s in stations}),
                    "cf:standard_name": [p.name for p in params],
                }.items()
                if v
            }
        ),
    )
    collection.stac_extensions += [CF_EXTENSION, SCIENTIFIC_EXTENSION]
    if license_id == "other" and stream.provider.url:
        collection.add_link(
            pystac.Link("license", stream.provider.url, "text/html", "Terms of the originator")
        )
    if stream.data_stream_plan:
        collection.add_link(
            pystac.Link("describedby", stream.data_stream_plan, title="Data Stream Plan")
        )
    _collection_assets(collection, stream, stations, grids, storage)
    for item in items:
        collection.add_item(item)
    return collection, items


def _collection_assets(
    collection: pystac.Collection,
    stream: Stream,
    stations: list[StationExtent],
    grids: list[GridExtent],
    storage: Storage,
) -> None:
    if is_external(stream):
        collection.add_asset(
            "source",
            pystac.Asset(
                href=str(stream.source.url),
                media_type=stream.source.params.get("media_type", "text/html"),
                title=f"Hosted by {stream.provider.name} (not copied into the lake)",
                roles=["data"],
            ),
        )
        return
    if stations:
        asset = pystac.Asset(
            href=storage.url("tables", "observations"),
            media_type=PARQUET,
            title="Observations of every station (Delta Lake table of Parquet files)",
            description=f"Select dataset_id = '{stream.id}'.",
            roles=["data"],
        )
        collection.add_asset("observations", asset)
        TableExtension.ext(collection, add_if_missing=True)
        TableExtension.ext(asset).columns = _table_columns()  # type: ignore[assignment]
    for grid in grids[:1]:
        asset = pystac.Asset(
            href=grid.url,
            media_type=ZARR,
            title="Icechunk repository of Zarr v3 (best estimate on branch main)",
            roles=["data"],
        )
        collection.add_asset("zarr", asset)
        xa = cast(AssetXarrayAssetsExtension, XarrayAssetsExtension.ext(asset, add_if_missing=True))
        xa.open_kwargs = {"engine": "zarr", "consolidated": False, "chunks": {}}
        if storage.is_s3:
            xa.storage_options = {"anon": False}
        collection.extra_fields["cube:dimensions"] = grid.dims
        collection.extra_fields["cube:variables"] = grid.variables
        DatacubeExtension.ext(collection, add_if_missing=True)


def provider_attributes(raw: str | None) -> dict[str, Any]:
    """Station attributes JSON from the stations table, as a dict ({} if unreadable)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}
