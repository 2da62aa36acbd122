"""The reference: ioos_qc called directly on numpy arrays, independent of qc/."""

from __future__ import annotations

from typing import Any

import numpy as np
from ioos_qc import qartod


def direct_flags(
    time: np.ndarray,
    value: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    tests: dict[str, dict[str, Any]],
) -> dict[str, np.ndarray]:
    """Flags of one whole series straight from ioos_qc, with the real time axis."""
    t = np.asarray(time, dtype="datetime64[ns]")
    v = np.asarray(value, dtype=np.float64)
    out: dict[str, np.ndarray] = {"qc_syntax": np.ones(len(v), np.int8)}
    if "timing_gap" in tests:
        gap = tests["timing_gap"]["fail_span"]
        out["qc_timing_gap"] = qartod.time_gap_test(tinp=t, fail_span=gap)
    if "location" in tests:
        out["qc_location"] = qartod.location_test(lon=lon, lat=lat)
    if "gross_range" in tests:
        g = tests["gross_range"]
        out["qc_gross_range"] = qartod.gross_range_test(
            inp=v, fail_span=tuple(g["fail_span"]), suspect_span=tuple(g["suspect_span"])
        )
    if "spike" in tests:
        s = tests["spike"]
        out["qc_spike"] = qartod.spike_test(
            inp=v, suspect_threshold=s["suspect_threshold"], fail_threshold=s["fail_threshold"]
        )
    if "rate_of_change" in tests:
        r = tests["rate_of_change"]
        out["qc_rate_of_change"] = qartod.rate_of_change_test(
            inp=v, tinp=t, threshold=r["threshold"], fail_threshold=r.get("fail_threshold")
        )
    if "flat_line" in tests:
        f = tests["flat_line"]
        out["qc_flat_line"] = qartod.flat_line_test(
            inp=v,
            tinp=t,
            suspect_threshold=f["suspect_threshold"],
            fail_threshold=f["fail_threshold"],
            tolerance=f["tolerance"],
        )
    out = {k: np.asarray(np.ma.filled(a, 9), dtype=np.int8) for k, a in out.items()}
    out["qc_agg"] = np.asarray(qartod.qartod_compare(list(out.values())), dtype=np.int8)
    return out
