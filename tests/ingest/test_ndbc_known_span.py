"""A poll's parser skips the records every series of a station already holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingest.ndbc_text import parse_ndbc_text

REALTIME = Path("registry/data/www.ndbc.noaa.gov/data/realtime2/44013.txt")


def _parse(known: tuple[datetime, datetime] | None):
    return parse_ndbc_text(
        REALTIME.read_bytes(),
        stream_id="ndbc-realtime",
        url="http://127.0.0.1/data/realtime2/44013.txt",
        raw_file="raw/44013.txt",
        station_id="urn:ioos:station:wmo:44013",
        known=known,
    )


def test_records_inside_the_known_span_are_skipped_and_the_rest_kept() -> None:
    everything = _parse(None)
    span = (datetime(2022, 5, 1), datetime(2022, 6, 5, 12, 40))
    skipped = _parse(span)
    times = everything.column("time")
    inside = pc.and_(
        pc.greater_equal(times, pa.scalar(span[0], times.type)),
        pc.less_equal(times, pa.scalar(span[1], times.type)),
    )
    expected = everything.filter(pc.invert(inside))
    assert skipped.num_rows == expected.num_rows > 0
    order = [("time", "ascending"), ("variable", "ascending")]
    # Compared as frames: z is NaN (no depth given), and NaN equals NaN there.
    assert skipped.sort_by(order).to_pandas().equals(expected.sort_by(order).to_pandas())


def test_a_file_with_nothing_new_still_parses_its_newest_record() -> None:
    span = (datetime(2000, 1, 1), datetime(2030, 1, 1))
    skipped = _parse(span)
    assert skipped.num_rows > 0
    assert pc.min(skipped.column("time")).as_py() == datetime(2022, 6, 5, 13, 0, tzinfo=UTC)
