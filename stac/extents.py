"""What the lake holds, as the catalog reads it: one value per station, grid and GIS layer.

`stac.contents.read_contents` fills a `LakeContents` once per build; the collection and item
builders only read these values, so extents always come from the data, never from the
registry alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


def unique_parameters(params: Iterable[Parameter]) -> list[Parameter]:
    """Parameters by name, first unit seen wins, sorted: one entry per CF standard name."""
    seen: dict[str, Parameter] = {}
    for p in params:
        seen.setdefault(p.name, p)
    return sorted(seen.values(), key=lambda p: p.name)
