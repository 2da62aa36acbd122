"""The IOOS compliance-checker run in-process: which high-priority checks a file fails."""

from __future__ import annotations

from pathlib import Path

from compliance_checker.base import BaseCheck
from compliance_checker.runner import CheckSuite

_SUITE: CheckSuite | None = None

#: What every NetCDF the lake hands out is checked against.
COMMON = ("cf:1.8", "acdd:1.3", "ioos:1.2")
#: NCEI's templates for a single-station time series and for a grid.
NCEI_TIMESERIES = "ncei-timeseries-orthogonal:2.0"
NCEI_GRID = "ncei-grid:2.0"


def _suite() -> CheckSuite:
    global _SUITE
    if _SUITE is None:
        _SUITE = CheckSuite()
        _SUITE.load_all_available_checkers()
    return _SUITE


def high_failures(path: Path, checkers: tuple[str, ...]) -> dict[str, list[str]]:
    """checker -> 'check: message' of every high-priority check the file does not pass."""
    suite = _suite()
    ds = suite.load_dataset(str(path))
    try:
        results = suite.run_all(ds, list(checkers), skip_checks=[])
    finally:
        ds.close()
    out: dict[str, list[str]] = {}
    for name, (groups, errors) in results.items():
        failed = [f"{name} crashed: {e}" for e in errors]
        for result in groups:
            if result.weight != BaseCheck.HIGH:
                continue
            value = result.value
            ok = value[0] == value[1] if isinstance(value, tuple) else bool(value)
            if not ok:
                failed.append(f"{result.name}: {'; '.join(map(str, result.msgs))}")
        if failed:
            out[name] = failed
    return out
