"""Vacuum with a true report: which files Delta named, which of them were really deleted,
which were gone already and which are still there.

delta-rs returns the files it meant to delete; a file already gone (removed by an earlier
vacuum or by hand) or one the store refused to delete is in that list too. A data manager
reading "removed N files" must be able to trust N, so the files are looked at before and
after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from lake.tables import ObservationTable


@dataclass(frozen=True)
class VacuumReport:
    """What a vacuum did to the table's files."""

    removed: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    still_there: list[str] = field(default_factory=list)

    def summary(self, hours: int) -> str:
        text = f"removed {len(self.removed)} files older than {hours} h that no version needs"
        if self.already_gone:
            text += f"; {len(self.already_gone)} listed by the Delta log were already gone"
        if self.still_there:
            text += f"; {len(self.still_there)} could not be deleted and are still there"
        return text


def vacuum(table: ObservationTable, retention: timedelta) -> VacuumReport:
    """Delete the table's files that no version within `retention` needs, and say which
    were really deleted."""
    fs = table.storage.fs
    hours = int(retention.total_seconds() // 3600)
    delta = table.delta()
    candidates = [
        _relative(table, p)
        for p in delta.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=True)
    ]
    present = {p for p in candidates if fs.exists(f"{table.url}/{p}")}
    named = [_relative(table, p) for p in table.vacuum(retention)]
    removed: list[str] = []
    still: list[str] = []
    for path in sorted(present | set(named)):
        if path not in present:
            continue
        (still if fs.exists(f"{table.url}/{path}") else removed).append(path)
    gone = sorted(p for p in set(candidates) | set(named) if p not in present)
    return VacuumReport(removed=removed, already_gone=gone, still_there=still)


def _relative(table: ObservationTable, path: str) -> str:
    """A file's path inside the table (delta-rs gives local files as absolute paths)."""
    path = path.removeprefix("file://")
    base = table.url.removeprefix("file://").rstrip("/") + "/"
    return path[len(base) :] if path.startswith(base) else path
