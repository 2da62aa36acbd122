"""Real series and streams for the QC tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lake.registry import Stream

DATA = Path(__file__).resolve().parent.parent / "data" / "qc"
HUMBOLDT = DATA / "20363_1000427.csv.gz"
HUMBOLDT_STATION = "urn:ioos:sensor:axiom:20363"
HUMBOLDT_VARIABLE = "unknown_parameter_1000427"

#: Explicit thresholds for the Humboldt series (values 0..2579, mostly every 15 min), chosen
#: so every windowed test gives a mix of flags on the real data.
HUMBOLDT_TESTS: dict[str, dict[str, Any]] = {
    "timing_gap": {"fail_span": 2.0},
    "gross_range": {"fail_span": [0.5, 2500.0], "suspect_span": [10.0, 2000.0]},
    "spike": {"suspect_threshold": 300.0, "fail_threshold": 800.0},
    "rate_of_change": {"threshold": 0.1, "fail_threshold": 0.25},
    "flat_line": {"suspect_threshold": 10800, "fail_threshold": 21600, "tolerance": 1.0},
}


def humboldt_rows(dataset_id: str = "humboldt", n: int | None = None) -> pa.Table:
    """The real series as normalized observation rows (what ingest hands to QC)."""
    frame = pd.read_csv(HUMBOLDT)
    if n is not None:
        frame = frame.iloc[:n]
    time = pd.to_datetime(frame["time"], utc=True).dt.tz_localize(None).to_numpy("datetime64[us]")
    size = len(frame)
    return pa.table(
        {
            "dataset_id": pa.array([dataset_id] * size),
            "station_id": pa.array([HUMBOLDT_STATION] * size),
            "time": pa.array(time, pa.timestamp("us")),
            "z": pa.array(np.zeros(size)),
            "lon": pa.array(frame["longitude"].to_numpy(np.float64)),
            "lat": pa.array(frame["latitude"].to_numpy(np.float64)),
            "variable": pa.array([HUMBOLDT_VARIABLE] * size),
            "value": pa.array(frame["value"].to_numpy(np.float64)),
            "units": pa.array(["1"] * size),
            "provider_flag": pa.nulls(size, pa.string()),
            "raw_id": pa.array(["humboldt-csv"] * size),
        }
    )


def make_stream(
    stream_id: str = "humboldt",
    category: str = "regional",
    tests: dict[str, Any] | None = None,
    stations: dict[str, Any] | None = None,
    cadence: str = "15min",
    **qc: Any,
) -> Stream:
    return Stream.model_validate(
        {
            "id": stream_id,
            "title": "Humboldt Bay sensor 20363 (ioos_qc test series)",
            "provider": {"name": "IOOS / Axiom"},
            "category": category,
            "data_stream_plan": (
                "https://example.org/dsp" if category in ("funded", "regional") else None
            ),
            "source": {"kind": "csv", "url": str(HUMBOLDT)},
            "cadence": cadence,
            "qc": {
                "tests": HUMBOLDT_TESTS if tests is None else tests,
                "stations": stations or {},
                **qc,
            },
        }
    )
