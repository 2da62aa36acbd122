"""Times a client sends (`time>=now-3days`, epoch seconds, ISO 8601), read safely.

Every route that takes a time constraint (tabledap, downloads, the portal's series) reads it
here, so a time that does not exist or that no calendar can hold (`nan`, `now-99999999999days`,
year 10000) is one clear RequestError naming the parameter, never an overflow deep in a query.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pandas as pd

from lake.errors import RequestError

NOW = re.compile(
    r"^now(?:\s*([+-])\s*(\d{1,12})\s*(seconds?|minutes?|hours?|days?|weeks?|months?|years?))?$"
)
#: Seconds per unit of `now-N<unit>` (months and years as ERDDAP counts them).
UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "week": 7 * 86_400,
    "month": 30 * 86_400,
    "year": 365 * 86_400,
}
#: The span every store of the lake can hold (Arrow timestamps in microseconds, pandas in ns).
EARLIEST = datetime(1678, 1, 1)
LATEST = datetime(2261, 12, 31)
HINT = "use ISO 8601, seconds since 1970, or now-1day"


def _in_range(value: datetime, name: str, text: str) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise RequestError(
            f"{name}: {text[:40]!r} is outside the times the lake can hold "
            f"({EARLIEST:%Y}..{LATEST:%Y})"
        )
    return value


def parse_time(text: str, name: str = "time") -> datetime:
    """A naive UTC datetime from `text`; RequestError naming `name` if it is no usable time."""
    text = text.strip().strip('"')
    now = NOW.match(text)
    if now:
        value = datetime.now(UTC).replace(tzinfo=None)
        if now.group(1):
            sign = 1 if now.group(1) == "+" else -1
            shift = sign * int(now.group(2)) * UNIT_SECONDS[now.group(3).rstrip("s")]
            if abs(shift) > (LATEST - EARLIEST).total_seconds():
                raise RequestError(f"{name}: {text[:40]!r} is outside the times the lake can hold")
            value += timedelta(seconds=shift)
        return _in_range(value, name, text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise RequestError(f"{name}: {text[:40]!r} is not a time ({HINT})")
        if abs(seconds) > 1e10:
            raise RequestError(f"{name}: {text[:40]!r} seconds since 1970 is out of range")
        return _in_range(datetime(1970, 1, 1) + timedelta(seconds=seconds), name, text)
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(f"{name}: {text[:40]!r} is not a time ({HINT})") from None
    if stamp is pd.NaT:
        raise RequestError(f"{name}: {text[:40]!r} is not a time ({HINT})")
    try:
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        value = stamp.to_pydatetime()
    except (ValueError, OverflowError):
        raise RequestError(
            f"{name}: {text[:40]!r} is outside the times the lake can hold"
        ) from None
    return _in_range(value, name, text)
