"""The raw zone keeps every response by the hash of its bytes as sent: text compressed
(`<hash>.gz`, which zcat opens), what is compressed already as it came, each once."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime

import pytest

from lake.raw import GZ, RawResponse, RawZone
from lake.storage import Storage
from tests.conftest import REPO, SAMPLE_DATA

REALTIME = SAMPLE_DATA / "www.ndbc.noaa.gov" / "data" / "realtime2" / "44013.txt"
#: A response that is compressed already (a gzip CSV of the Humboldt QC sample).
PACKED = REPO / "tests" / "data" / "qc" / "20363_1000427.csv.gz"


def response(body: bytes, stream: str = "ndbc-44013-stdmet") -> RawResponse:
    return RawResponse(stream, "https://www.ndbc.noaa.gov/data/realtime2/44013.txt", body,
                       datetime(2026, 12, 3, tzinfo=UTC), "text/plain")  # fmt: skip


def test_a_text_response_is_kept_compressed_and_given_back_as_sent(storage: Storage) -> None:
    body = REALTIME.read_bytes()
    zone = RawZone(storage)
    raw = response(body)
    where = zone.put(raw)
    assert where.endswith(GZ)
    assert raw.raw_id == hashlib.sha256(body).hexdigest()
    assert zone.get(raw.stream_id, raw.raw_id) == body
    stored = storage.read_bytes(where)
    assert len(stored) < len(body) / 4  # a 45-day NDBC file: about a sixth
    assert gzip.decompress(stored) == body  # what zcat shows
    meta = zone.meta(raw.stream_id, raw.raw_id)
    assert meta["stored_as"] == "gzip" and meta["bytes"] == len(body)
    # The same bytes again: the same single object.
    assert zone.put(response(body)) == where
    assert gzip.compress(body, compresslevel=5, mtime=0) == stored


def test_compressed_or_small_responses_are_kept_as_sent(storage: Storage) -> None:
    zone = RawZone(storage)
    for body in (PACKED.read_bytes(), b"#YY MM DD hh mm WDIR\n2026 12 03 00 00 180\n"):
        raw = response(body, "erddap-mw-sst-1day")
        where = zone.put(raw)
        assert not where.endswith(GZ)
        assert storage.read_bytes(where) == body
        assert zone.get(raw.stream_id, raw.raw_id) == body
        assert zone.meta(raw.stream_id, raw.raw_id)["stored_as"] == "as sent"


def test_a_lake_written_before_compression_still_reads(storage: Storage) -> None:
    body = REALTIME.read_bytes()
    zone = RawZone(storage)
    raw = response(body)
    storage.write_bytes(zone.location(raw.stream_id, raw.raw_id), body)  # as older lakes did
    assert zone.get(raw.stream_id, raw.raw_id) == body
    assert zone.put(raw) == zone.location(raw.stream_id, raw.raw_id)  # not stored twice
    with pytest.raises(FileNotFoundError):
        zone.get(raw.stream_id, "0" * 64)
