"""Running the history refreshes that are due (`ingest.history`): each one a backfill of its
stream's window through the harvest job, then one record in the harvest log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from coastlake.harvest import HarvestOptions, run_harvest
from ingest.history import Refresh
from lake.harvest_log import HarvestLog, HarvestRecord
from lake.registry import Registry
from lake.storage import Storage

log = logging.getLogger(__name__)


def run_refreshes(
    storage: Storage,
    registry: Registry,
    refreshes: list[Refresh],
    *,
    progress: bool = True,
) -> list[HarvestRecord]:
    """Backfill each refresh's window (the QC'd files replace provisional values by source
    rank), log one `history refresh` record per stream; returns every record written."""
    out: list[HarvestRecord] = []
    for refresh in refreshes:
        started = datetime.now(UTC)
        options = HarvestOptions(since=refresh.since, until=refresh.until)
        records = run_harvest(storage, registry, [refresh.stream], options, progress=progress)
        summary = refresh.record(records, started)
        HarvestLog(storage).add([summary])
        log.info(
            "stream=%s history refresh %s..%s: %d values read, %d new, status %s",
            refresh.stream.id,
            f"{refresh.since:%Y-%m-%d}",
            f"{refresh.until:%Y-%m-%d}",
            summary.rows_in,
            summary.rows_added,
            summary.status,
        )
        out += [*records, summary]
    return out
