"""The registry of source kinds: a plain dict from `source.kind` to its harvester class."""

from __future__ import annotations

from ingest.base import Harvester
from ingest.coops import Coops
from ingest.erddap import Erddap
from ingest.ndbc import NdbcRealtime
from ingest.nerrs import Nerrs
from ingest.textfile import TextFile
from lake.errors import ConfigError

HARVESTERS: dict[str, type] = {
    NdbcRealtime.kind: NdbcRealtime,
    Coops.kind: Coops,
    Erddap.kind: Erddap,
    Nerrs.kind: Nerrs,
    TextFile.kind: TextFile,
}


def get_harvester(kind: str) -> Harvester:
    """The harvester for a source kind; ConfigError listing the known kinds if unknown."""
    try:
        return HARVESTERS[kind]()  # type: ignore[no-any-return]
    except KeyError:
        raise ConfigError(f"source kind {kind!r} unknown; known: {sorted(HARVESTERS)}") from None
