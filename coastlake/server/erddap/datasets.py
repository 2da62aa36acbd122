"""What the ERDDAP endpoints say about a dataset: title, summary, extents, and which exist."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lake.deps import LakeDeps
from lake.registry import Publication
from stac.publish import published_ids

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    dataset_id: str
    title: str
    summary: str
    institution: str
    license: str
    citation: str
    keywords: tuple[str, ...]
    published: bool
    variables: tuple[str, ...]
    min_lon: float | None
    max_lon: float | None
    min_lat: float | None
    max_lat: float | None
    min_time: datetime | None
    max_time: datetime | None

    def global_attributes(self) -> dict[str, Any]:
        """ACDD global attributes, as ERDDAP's info page and .ncCF files carry them."""
        attrs: dict[str, Any] = {
            "cdm_data_type": "TimeSeries",
            "featureType": "TimeSeries",
            "Conventions": "CF-1.11, ACDD-1.3, COARDS",
            "title": self.title,
            "summary": self.summary,
            "institution": self.institution,
            "license": self.license,
            "references": self.citation,
            "keywords": ", ".join(self.keywords),
        }
        if self.min_time is not None and self.max_time is not None:
            attrs["time_coverage_start"] = self.min_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            attrs["time_coverage_end"] = self.max_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.min_lon is not None:
            attrs.update(
                geospatial_lon_min=self.min_lon,
                geospatial_lon_max=self.max_lon,
                geospatial_lat_min=self.min_lat,
                geospatial_lat_max=self.max_lat,
            )
        return attrs


def published_dataset_ids(ctx: LakeDeps) -> set[str] | None:
    """Published dataset ids from the catalog's workflow (stac.publish); None if unreadable."""
    try:
        return set(published_ids(storage=ctx.storage, registry=ctx.registry()))
    except Exception:
        log.exception("publication states could not be read; using the registry's")
        return None


def _extents_sql(ctx: LakeDeps) -> str:
    """Each dataset's extent: from the series state the harvester keeps at write time
    (one row per series), or, in a lake written by other means, from the observations."""
    kept = bool(ctx.sql("SELECT count(*) AS n FROM series")["n"][0].as_py())
    first, last, source = (
        ("first_time", "last_time", "series") if kept else ("time", "time", "observations_all")
    )
    return (
        "SELECT dataset_id, min(lon) AS min_lon, max(lon) AS max_lon, min(lat) AS min_lat, "
        f"max(lat) AS max_lat, min({first}) AS min_time, max({last}) AS max_time, "
        "list(DISTINCT variable ORDER BY variable) AS variables "
        f"FROM {source} GROUP BY dataset_id"
    )


def list_datasets(ctx: LakeDeps, *, published_only: bool = False) -> list[DatasetSummary]:
    """Every time-series dataset: registered streams plus any dataset the lake holds rows for."""
    extents = {r["dataset_id"]: r for r in ctx.sql(_extents_sql(ctx)).to_pylist()}
    out: list[DatasetSummary] = []
    seen: set[str] = set()
    published_ids = published_dataset_ids(ctx)
    for stream in ctx.registry().streams:
        if stream.kind.value not in ("timeseries", "trajectory", "profile"):
            continue
        seen.add(stream.id)
        if published_ids is None:
            published = stream.publication == Publication.published
        else:
            published = stream.id in published_ids
        if published_only and not published:
            continue
        e = extents.get(stream.id, {})
        out.append(
            DatasetSummary(
                dataset_id=stream.id,
                title=stream.title,
                summary=stream.summary.strip(),
                institution=stream.provider.name,
                license=stream.license,
                citation=stream.citation,
                keywords=tuple(stream.keywords),
                published=published,
                variables=tuple(e.get("variables") or [v.standard_name for v in stream.variables]),
                min_lon=e.get("min_lon"),
                max_lon=e.get("max_lon"),
                min_lat=e.get("min_lat"),
                max_lat=e.get("max_lat"),
                min_time=e.get("min_time"),
                max_time=e.get("max_time"),
            )
        )
    if not published_only:
        for dataset_id, e in extents.items():
            if dataset_id in seen:
                continue
            out.append(
                DatasetSummary(
                    dataset_id=dataset_id,
                    title=dataset_id,
                    summary="",
                    institution="",
                    license="",
                    citation="",
                    keywords=(),
                    published=False,
                    variables=tuple(e.get("variables") or ()),
                    min_lon=e["min_lon"],
                    max_lon=e["max_lon"],
                    min_lat=e["min_lat"],
                    max_lat=e["max_lat"],
                    min_time=e["min_time"],
                    max_time=e["max_time"],
                )
            )
    return out


def find_dataset(ctx: LakeDeps, dataset_id: str) -> DatasetSummary | None:
    """One dataset's summary (drafts included: reachable by id, not listed in search)."""
    for d in list_datasets(ctx):
        if d.dataset_id == dataset_id:
            return d
    return None
