"""Providers' own QC flags, each mapped into a QARTOD flag through one table per provider.

`provider_flag` keeps what the provider sent, verbatim; this module reads it. The QARTOD
flag it maps to enters `qc_agg` beside our tests: a provider's reject is a fail (masked
from what is served by default), its suspect a suspect. A provider's "good" never makes a
value pass on its own (`qc.aggregate`): it says the provider looked, not that we did.

| provider (source kind) | provider flag | QARTOD |
|---|---|---|
| NERRS CDMO (`nerrs`) | `<0>` passed initial QA/QC | 1 pass |
| | `<1>` suspect | 3 suspect |
| | `<-3>` rejected by QA/QC, `<-4>` below / `<-5>` above sensor range | 4 fail |
| | `<-1>` not collected, `<-2>` missing | 9 missing |
| | `<2>` reserved, `<3>` calculated, `<4>` historical, `<5>` corrected | 2 not evaluated |
| CO-OPS (`coops`) | `f=` all 0 (no limit, flat, rate or 3-sigma check tripped) | 1 pass |
| | `f=` any 1 | 3 suspect |
| NDBC (`ndbc`) | none: NDBC publishes values failing its QC as missing (`MM`) | - |
| ERDDAP (`erddap`) `*_qc_agg` and any QARTOD-coded flag | `1`, `2`, `3`, `4`, `9` | the same |

Any other text maps to 0: no information, left out of the aggregate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from lake.flags import FAIL, MISSING, NOT_EVALUATED, PASS, SUSPECT

NO_INFORMATION = 0

#: CDMO's QA/QC flag numbers (the number in `<...>`) to QARTOD.
CDMO_FLAGS: dict[int, int] = {
    0: PASS,
    1: SUSPECT,
    -3: FAIL,
    -4: FAIL,
    -5: FAIL,
    -1: MISSING,
    -2: MISSING,
    2: NOT_EVALUATED,
    3: NOT_EVALUATED,
    4: NOT_EVALUATED,
    5: NOT_EVALUATED,
}
_CDMO = re.compile(r"<\s*(-?\d+)\s*>")
_COOPS_F = re.compile(r"(?:^|;)\s*f=([01](?:,[01])*)")
_QARTOD = {str(v): v for v in (PASS, NOT_EVALUATED, SUSPECT, FAIL, MISSING)}


def cdmo_flag(text: str) -> int:
    """A NERRS CDMO flag such as `<-3> [GIC] (CSM)` as a QARTOD flag."""
    found = _CDMO.search(text)
    return CDMO_FLAGS.get(int(found.group(1)), NO_INFORMATION) if found else NO_INFORMATION


def coops_flag(text: str) -> int:
    """CO-OPS quality fields as kept (`f=0,0,0,0;q=v;s=0.02`) as a QARTOD flag."""
    found = _COOPS_F.search(text)
    if not found:
        return qartod_flag(text)
    return SUSPECT if "1" in found.group(1).split(",") else PASS


def qartod_flag(text: str) -> int:
    """A flag already in QARTOD's codes (ERDDAP `*_qc_agg`, IOOS providers)."""
    value = text.strip()
    if value.endswith(".0"):
        value = value[:-2]
    return _QARTOD.get(value, NO_INFORMATION)


#: The table of each provider, by the stream's source kind.
PROVIDER_TABLES: dict[str, Callable[[str], int]] = {
    "nerrs": cdmo_flag,
    "coops": coops_flag,
    "erddap": qartod_flag,
}


def provider_qartod(kind: str, flags: Sequence[str | None]) -> np.ndarray:
    """The providers' flags of one series as QARTOD flags (0 where they say nothing)."""
    read = PROVIDER_TABLES.get(kind, qartod_flag)
    return np.array([NO_INFORMATION if f is None else read(str(f)) for f in flags], dtype=np.int8)
