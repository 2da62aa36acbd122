"""The main job on the embedded default: harvest every sample stream into the lake."""

from __future__ import annotations

import logging

from coastlake.harvest import run_harvest
from lake.registry import Registry
from lake.settings import get_settings
from lake.storage import Storage

log = logging.getLogger(__name__)


def build_demo(registry: Registry, root: str | None = None) -> list[str]:
    """Harvest all streams of `registry` into the lake; returns lines to show the user."""
    storage = Storage.from_settings(get_settings(), root=root)
    log.info("building the lake at %s from %s", storage.root, registry.path)
    records = run_harvest(storage, registry, registry.streams)
    ok = [r for r in records if r.status in ("ok", "unchanged")]
    lines = [
        f"lake at {storage.root}: {len(ok)} of {len(records)} harvests succeeded, "
        f"{sum(r.rows_added for r in records):,} new values"
    ]
    lines += [
        f"  {r.stream_id} {r.label}: {r.status} {r.error or ''}".rstrip()
        for r in records
        if r not in ok
    ]
    lines.append(
        'try: .venv/bin/lake sql "select variable, units, count(*) from observations group by all"'
    )
    return lines
