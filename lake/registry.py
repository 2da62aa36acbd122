"""The stream registry: one YAML file listing every data stream, validated with pydantic.

Nothing runs on a registry that does not validate; a mistake is reported with the file, the
stream id, the field and what was expected.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lake.errors import ConfigError, NotFound


class Category(StrEnum):
    """Data categories of the plan (§4.5): they decide the QC path and the paperwork."""

    federal = "federal"
    model = "model"
    static = "static"
    funded = "funded"
    regional = "regional"

    @property
    def needs_stream_plan(self) -> bool:
        """Funded and regional streams need a Data Stream Plan; the others are exempt."""
        return self in (Category.funded, Category.regional)

    @property
    def qc_path(self) -> str:
        """Federal data keep their provider's QC; ours gets the full QARTOD suite."""
        return {
            Category.federal: "provider flags (QARTOD if asked)",
            Category.model: "syntax and gap checks",
            Category.static: "syntax check",
            Category.funded: "full QARTOD suite",
            Category.regional: "full QARTOD suite",
        }[self]


class Kind(StrEnum):
    timeseries = "timeseries"
    trajectory = "trajectory"
    profile = "profile"
    grid = "grid"
    vector = "vector"


class Publication(StrEnum):
    draft = "draft"
    review = "review"
    published = "published"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|hr|d|day|days|w)\s*$")
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "min": 60,
    "m": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """A duration from '10min', '1h', '6h', '1d', seconds, or a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"expected a duration like '10min', '1h' or '1d', got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    name: str
    url: str | None = None
    email: str | None = None
    roles: list[str] = Field(default_factory=lambda: ["producer"])


#: The source kind of a catalog-only reference to a feed hosted elsewhere: described in STAC,
#: never harvested. The registry owns the kinds a stream may name, so the name lives here.
EXTERNAL_KIND = "external"


class SourceConfig(BaseModel):
    """Which harvester reads the source and its parameters (checked by the harvester itself)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str = Field(description="Harvester name, e.g. ndbc, coops, erddap, nerrs, csv")
    url: str | None = Field(default=None, description="Base URL or file URL of the source")
    max_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Most bytes one response may hold once decoded (LAKE_FETCH_MAX_BYTES else)",
    )

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class VariableConfig(_Strict):
    """A source column and what it is: the CF standard name and the units the source uses."""

    source: str
    standard_name: str
    units: str
    z: float | None = Field(default=None, description="Sensor height (+) or depth (-) in m")


class QcConfig(BaseModel):
    """Which QARTOD tests run and with what thresholds; details belong to the qc package."""

    model_config = ConfigDict(extra="allow", frozen=True)
    tests: dict[str, dict[str, Any]] = Field(default_factory=dict)
    stations: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    retest_provider: bool = False


class Retention(_Strict):
    keep: bool = Field(default=True, description="False: serve but never store (terms of use)")
    days: int | None = Field(default=None, description="Drop rows older than this; None: forever")
    keep_raw: bool = True
    superseded_runs: bool = Field(default=False, description="Keep superseded forecast runs")

    def describe(self) -> str:
        """What the lake keeps of a stream under these rules, in a sentence (the catalog's
        and the Data Stream Plan's wording; `lake retention apply` enforces it)."""
        if not self.keep:
            return (
                "The provider's terms forbid keeping copies: values are deleted from the lake "
                "after each harvest and raw responses are not kept."
            )
        kept = f"Values are kept for {self.days} days" if self.days else "Values are kept"
        raw = "with the raw responses" if self.keep_raw else "without the raw responses"
        runs = "; superseded model runs are kept" if self.superseded_runs else ""
        return f"{kept}, {raw}{runs}."


class Archive(_Strict):
    ncei: bool = False
    accession: str | None = None


class Stream(_Strict):
    """One data stream: one dataset in the lake."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    title: str
    summary: str = ""
    provider: Provider
    category: Category
    kind: Kind = Kind.timeseries
    source: SourceConfig
    cadence: timedelta = Field(default=timedelta(hours=1))
    variables: list[VariableConfig] = Field(default_factory=list)
    qc: QcConfig = Field(default_factory=QcConfig)
    retention: Retention = Field(default_factory=Retention)
    archive: Archive = Field(default_factory=Archive)
    license: str = "other"
    citation: str = ""
    keywords: list[str] = Field(default_factory=list)
    publisher: Provider | None = Field(
        default=None, description="Who publishes the stream's data (default: the registry's)"
    )
    publication: Publication = Publication.draft
    data_stream_plan: str | None = Field(default=None, description="URL or path of the DSP")

    @field_validator("cadence", mode="before")
    @classmethod
    def _cadence(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _plan_required(self) -> Stream:
        if self.category.needs_stream_plan and not self.data_stream_plan:
            raise ValueError(
                f"a {self.category.value} stream needs a Data Stream Plan: set data_stream_plan"
            )
        return self


class Registry(_Strict):
    streams: list[Stream]
    publisher: Provider | None = Field(
        default=None, description="The organisation publishing the lake; streams inherit it"
    )
    path: str = ""

    @model_validator(mode="after")
    def _unique_ids(self) -> Registry:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.id in seen:
                raise ValueError(f"stream id {stream.id!r} appears twice")
            seen.add(stream.id)
        return self

    def get(self, stream_id: str) -> Stream:
        for stream in self.streams:
            if stream.id == stream_id:
                return stream
        raise NotFound(f"no stream {stream_id!r} in {self.path}; known: {self.ids()}")

    def ids(self) -> list[str]:
        return [s.id for s in self.streams]


def _describe(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "missing":
        return "is required but missing"
    if error.get("type") == "extra_forbidden":
        return "is not a known field (check its spelling)"
    got = error.get("input")
    if got is not None and not isinstance(got, dict | list):
        return f"{msg}; got {got!r}"
    return msg


def _resolve_relative_urls(raw: dict[str, Any], registry_path: str) -> None:
    """A source url without a scheme is a path relative to the registry file: file:// URL.

    This is what lets the shipped sample registry run offline from recorded files.
    """
    if "://" in registry_path and not registry_path.startswith("file://"):
        return
    base = Path(registry_path.removeprefix("file://")).resolve().parent
    for item in raw.get("streams") or []:
        source = item.get("source") if isinstance(item, dict) else None
        url = source.get("url") if isinstance(source, dict) else None
        if isinstance(source, dict) and isinstance(url, str) and url and "://" not in url:
            source["url"] = (base / url).resolve().as_uri()


def _inherit_publisher(raw: dict[str, Any]) -> None:
    """A stream without its own `publisher` is published by the registry's publisher."""
    publisher = raw.get("publisher")
    if not isinstance(publisher, dict):
        return
    for item in raw.get("streams") or []:
        if isinstance(item, dict) and "publisher" not in item:
            item["publisher"] = publisher


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry; raise ConfigError naming file, stream and field."""
    path = str(path)
    try:
        with fsspec.open(path, "r", encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError("registry file not found", file=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=path) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("streams"), list):
        raise ConfigError("expected a mapping with a 'streams:' list", file=path)
    _resolve_relative_urls(raw, path)
    _inherit_publisher(raw)
    try:
        registry = Registry.model_validate({**raw, "path": path})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        stream_id = None
        if len(loc) >= 2 and loc[0] == "streams" and isinstance(loc[1], int):
            item = raw["streams"][loc[1]]
            stream_id = item.get("id") if isinstance(item, dict) else None
            stream_id = stream_id or f"#{loc[1] + 1}"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or None
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(
            _describe(dict(err)) + more, file=path, stream=stream_id, field=field
        ) from None
    return registry
