"""Observation batches for table tests, built from the real NDBC 44013 file."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from ingest.ndbc import STDMET, parse_ndbc_text
from ingest.normalize import mappings_for, normalize
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY
from tests.conftest import SAMPLE_DATA

NDBC_44013 = SAMPLE_DATA / "www.ndbc.noaa.gov" / "data" / "realtime2" / "44013.txt"


@lru_cache(maxsize=1)
def real_rows() -> pa.Table:
    """All 44013 rows, normalized as the harvester does (about 38 k values)."""
    stream = load_registry(SAMPLE_REGISTRY).get("ndbc-44013-stdmet")
    source = parse_ndbc_text(
        NDBC_44013.read_bytes(),
        stream_id=stream.id,
        url="file://44013",
        raw_file="raw",
        station_id="urn:ioos:station:wmo:44013",
        lon=-70.651,
        lat=42.346,
    )
    return normalize(stream, source, mappings_for(stream, STDMET), raw_id="r1", url="u")


def batch(n: int, offset: int = 0, dataset_id: str = "ndbc-44013-stdmet") -> pa.Table:
    """n real rows starting at offset, under a chosen dataset id."""
    rows = real_rows().slice(offset, n)
    return rows.set_column(
        rows.schema.get_field_index("dataset_id"),
        "dataset_id",
        pa.array([dataset_id] * rows.num_rows, pa.string()),
    )


def total(table: pa.Table) -> float:
    return float(pc.sum(table.column("value")).as_py() or 0.0)
