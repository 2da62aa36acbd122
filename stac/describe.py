"""What the catalog says about a dataset, field by field: the registry entry mapped to STAC
provider, license and keyword fields, CF parameters, ACDD-1.3 attributes and IOOS fields.

Collections (`stac.collection`) and items (`stac.items`) share these mappings, so a dataset
is described the same way wherever it appears. Registry streams whose `source.kind` is
`external` are references to feeds hosted elsewhere (a partner's ERDDAP dataset we do not
copy): the originator is their only provider, since we neither process nor host the data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pystac

from lake.registry import EXTERNAL_KIND, Kind, Stream
from stac.extents import Parameter, unique_parameters

CF_EXTENSION = "https://stac-extensions.github.io/cf/v0.2.0/schema.json"
SCIENTIFIC_EXTENSION = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
CF_VOCABULARY = "CF Standard Name Table v92"
DISTRIBUTOR = "coastlake regional ocean data lake"
_SPDX = re.compile(r"^[\w\-.+]+$")
#: The time of data that has none of its own (a grid without a time axis, an undated layer):
#: STAC needs one, and the epoch cannot be mistaken for a real observation time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def public_url() -> str:
    """Base URL of the server the catalog's `server` hrefs point at (LAKE_PUBLIC_URL)."""
    return os.environ.get("LAKE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")


def is_external(stream: Stream) -> bool:
    """True for a catalog-only reference to a feed we do not harvest."""
    return stream.source.kind == EXTERNAL_KIND


def utc(value: datetime) -> datetime:
    """`value` in UTC; a naive time is taken to be UTC already (the lake stores no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a 'Z', or None."""
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")


def when(value: Any) -> datetime | None:
    """A registry time (datetime or ISO text) in UTC; None if unset, ValueError if unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def license_fields(text: str) -> tuple[str, str | None]:
    """(STAC license, free-text note): STAC wants an SPDX id or 'other'."""
    text = text.strip()
    if text and _SPDX.match(text):
        return text, None
    return "other", text or None


def intellectual_property(stream: Stream) -> str:
    """Who owns the data and what the license lets a reader do, in one sentence each."""
    license_id, note = license_fields(stream.license)
    parts = [f"License: {note or license_id}."]
    parts.append(f"Originator: {stream.provider.name}, who keeps the rights the license grants.")
    if stream.citation:
        parts.append(f"Cite as: {stream.citation}")
    parts.append(stream.retention.describe())
    return " ".join(parts)


def providers(stream: Stream) -> list[pystac.Provider]:
    """The originator, then us as distributor unless the feed is only referenced."""
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
    return unique_parameters(params)


def cf_parameter(params: Iterable[Parameter]) -> list[dict[str, Any]]:
    """The `cf:parameter` list: name, and unit where known."""
    return [{"name": p.name, "unit": p.unit} if p.unit else {"name": p.name} for p in params]


def taxa(stream: Stream) -> list[dict[str, Any]]:
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


def keywords(stream: Stream, params: Iterable[Parameter]) -> list[str]:
    """Registry keywords, CF names, category, kind, provider and taxa; each once, in order."""
    words = [*stream.keywords, *(p.name for p in params), stream.category.value]
    words += [stream.kind.value, stream.provider.name]
    words += [t["name"] for t in taxa(stream) if t.get("name")]
    return list(dict.fromkeys(w for w in words if w))


def acdd(
    stream: Stream,
    params: list[Parameter],
    bbox: list[float],
    start: datetime | None,
    end: datetime | None,
    provider_attrs: Mapping[str, Any],
) -> dict[str, Any]:
    """ACDD-1.3 global attributes for the dataset; the provider's own values win where set."""
    license_id, note = license_fields(stream.license)
    attrs: dict[str, Any] = {
        "id": stream.id,
        "naming_authority": "coastlake",
        "title": stream.title,
        "summary": stream.summary or stream.title,
        "keywords": ", ".join(keywords(stream, params)),
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
        "time_coverage_start": iso(start),
        "time_coverage_end": iso(end),
    }
    for key, value in provider_attrs.items():
        if key in attrs and value not in (None, ""):
            attrs[key] = value
    return {k: v for k, v in attrs.items() if v is not None}


def ioos_fields(stream: Stream) -> dict[str, Any]:
    """The IOOS fields every collection and item of the dataset carries."""
    return {
        "ioos:category": stream.category.value,
        "ioos:qc_path": stream.category.qc_path,
        "ioos:data_stream_plan": stream.data_stream_plan,
        "ioos:cadence_s": int(stream.cadence.total_seconds()),
        "ioos:ncei_archive": stream.archive.ncei,
    }


def union_bbox(boxes: Iterable[list[float]]) -> list[float] | None:
    """The box around all `boxes`, or None if there are none."""
    boxes = list(boxes)
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def registry_bbox(stream: Stream) -> list[float] | None:
    """The extent the registry declares (`source.bbox`, else its stations' positions)."""
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
