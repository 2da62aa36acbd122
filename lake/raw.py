"""The raw zone: every response kept as it came, by content hash, for provenance.

Putting the same bytes twice stores them once. A sidecar JSON beside each object records
where and when it came from.
"""

from __future__ import annotations

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
        return self.storage.url("raw", stream_id, raw_id[:2], raw_id)

    def put(self, raw: RawResponse) -> str:
        """Keep the response; returns its location (a URL or local path)."""
        where = self.location(raw.stream_id, raw.raw_id)
        if not self.storage.exists(where):
            self.storage.write_bytes(where, raw.body)
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
        }
        self.storage.write_bytes(where + ".json", json.dumps(meta, indent=1).encode())
        return where

    def get(self, stream_id: str, raw_id: str) -> bytes:
        return self.storage.read_bytes(self.location(stream_id, raw_id))

    def meta(self, stream_id: str, raw_id: str) -> dict[str, object]:
        data = self.storage.read_bytes(self.location(stream_id, raw_id) + ".json")
        return dict(json.loads(data))
