"""The raw zone: every response kept as it came, by content hash, for provenance.

Putting the same bytes twice stores them once. A sidecar JSON beside each object records
where and when it came from. Text that compresses well (NDBC's 45-day real-time files,
CSV, JSON: 5–10 times) is kept gzip-compressed as `<hash>.gz`, which `zcat` opens: a
region's real-time cycle keeps ~150 changed files every ten minutes, 86 MB as sent. The
hash is always that of the bytes as sent, and `get` returns them as sent.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from lake.storage import Storage


@dataclass(frozen=True, slots=True)
class RawResponse:
    """The bytes a source sent and where and when they came from."""

    stream_id: str
    url: str
    body: bytes
    fetched_at: datetime
    content_type: str | None = None
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    label: str = ""

    @property
    def raw_id(self) -> str:
        """Content hash: the same bytes always have the same id, so they are kept once."""
        return hashlib.sha256(self.body).hexdigest()


class RawZone:
    """Immutable bytes by content hash under `<root>/raw/<stream>/<hash[:2]>/<hash>`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def location(self, stream_id: str, raw_id: str) -> str:
        """Where bytes with `raw_id` are kept uncompressed (see `stored_at`)."""
        return self.storage.url("raw", stream_id, raw_id[:2], raw_id)

    def stored_at(self, stream_id: str, raw_id: str) -> str:
        """Where bytes with `raw_id` are, compressed or not (FileNotFoundError if nowhere)."""
        plain = self.location(stream_id, raw_id)
        for where in (plain + GZ, plain):
            if self.storage.exists(where):
                return where
        raise FileNotFoundError(plain)

    def put(self, raw: RawResponse) -> str:
        """Keep the response; returns its location (a URL or local path)."""
        plain = self.location(raw.stream_id, raw.raw_id)
        try:
            where = self.stored_at(raw.stream_id, raw.raw_id)
        except FileNotFoundError:
            packed = _compressed(raw.body)
            where = plain + GZ if packed is not None else plain
            self.storage.write_bytes(where, packed if packed is not None else raw.body)
        meta = {
            "stream_id": raw.stream_id,
            "url": raw.url,
            "fetched_at": raw.fetched_at.isoformat(),
            "content_type": raw.content_type,
            "status": raw.status,
            "etag": raw.etag,
            "last_modified": raw.last_modified,
            "bytes": len(raw.body),
            "sha256": raw.raw_id,
            "stored_as": "gzip" if where.endswith(GZ) else "as sent",
        }
        self.storage.write_bytes(where + ".json", json.dumps(meta, indent=1).encode())
        return where

    def get(self, stream_id: str, raw_id: str) -> bytes:
        """The bytes as the source sent them."""
        where = self.stored_at(stream_id, raw_id)
        data = self.storage.read_bytes(where)
        return gzip.decompress(data) if where.endswith(GZ) else data

    def meta(self, stream_id: str, raw_id: str) -> dict[str, object]:
        data = self.storage.read_bytes(self.stored_at(stream_id, raw_id) + ".json")
        return dict(json.loads(data))


#: The suffix of a raw object kept gzip-compressed.
GZ = ".gz"
#: Smaller bodies are kept as sent: compressing them saves next to nothing.
COMPRESS_FROM_BYTES = 4096


def _compressed(body: bytes) -> bytes | None:
    """`body` gzip-compressed (level 5, no timestamp: the same bytes give the same object),
    or None when that would not save a fifth (already compressed: NetCDF-4, zip, images)."""
    if len(body) < COMPRESS_FROM_BYTES:
        return None
    packed = gzip.compress(body, compresslevel=5, mtime=0)
    return packed if len(packed) < 0.8 * len(body) else None
