"""The registry of source kinds: a plain dict from `source.kind` to its harvester class."""

from __future__ import annotations

from ingest.base import Harvester
from ingest.contribution import UPLOAD_RANK, Contribution
from ingest.coops import Coops
from ingest.csv_source import TextFile
from ingest.erddap import Erddap
from ingest.html_table import HtmlTable
from ingest.ndbc import NdbcRealtime
from ingest.nerrs import Nerrs
from lake.errors import ConfigError
from lake.registry import EXTERNAL_KIND, Stream

HARVESTERS: dict[str, type] = {
    NdbcRealtime.kind: NdbcRealtime,
    Coops.kind: Coops,
    Erddap.kind: Erddap,
    Nerrs.kind: Nerrs,
    TextFile.kind: TextFile,
    HtmlTable.kind: HtmlTable,
    Contribution.kind: Contribution,
}


def _grid_kinds() -> dict[str, type]:
    # Imported on demand: grid sources pull in xarray and Icechunk, which a time-series
    # harvest does not need.
    from ingest.grid_sources import GisSource, grid_source_kinds

    return {**grid_source_kinds(), GisSource.kind: GisSource}


def is_harvested(kind: str) -> bool:
    """False for catalog-only streams (`source.kind: external`)."""
    return kind != EXTERNAL_KIND


def get_harvester(kind: str) -> Harvester:
    """The harvester for a source kind; ConfigError listing the known kinds if unknown."""
    found = HARVESTERS.get(kind) or _grid_kinds().get(kind)
    if found is None:
        known = sorted({*HARVESTERS, *_grid_kinds(), EXTERNAL_KIND})
        raise ConfigError(f"source kind {kind!r} unknown; known: {known}")
    return found()  # type: ignore[no-any-return]


def source_priority(stream: Stream) -> dict[str, int]:
    """The stream's rule of which source wins a key: its kind's products and their default
    ranks, uploads, then the registry's `source.priority` (higher replaces lower)."""
    harvester = HARVESTERS.get(stream.source.kind)
    defaults: dict[str, int] = dict(getattr(harvester, "source_ranks", {}))
    rules = stream.source.params.get("priority")
    own = {str(k): int(v) for k, v in rules.items()} if isinstance(rules, dict) else {}
    return {**defaults, "upload": UPLOAD_RANK, **own}
