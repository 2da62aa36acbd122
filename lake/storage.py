"""Storage of the lake: fsspec URLs on a local folder or any S3-compatible bucket.

Everything that touches bytes goes through `Storage`, so one code path serves a laptop folder
and a bucket. Object writes are atomic: a local file is written beside its target and renamed;
an S3 PUT is atomic already.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import fsspec

from lake.errors import RequestError, StorageError
from lake.settings import Settings, get_settings


@dataclass(frozen=True)
class Storage:
    """The lake root and how to reach it; `url("tables", "observations")` builds locations."""

    root: str
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings | None = None, root: str | None = None) -> Storage:
        settings = settings or get_settings()
        root = root or settings.root
        if not root.startswith("s3://") and "://" not in root:
            root = str(Path(root).expanduser().resolve())
        return cls(root=root.rstrip("/"), settings=settings)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def url(self, *parts: str) -> str:
        """Full URL (or absolute local path) of a location under the lake root; a part that
        would climb out of it (a `..` segment) is refused."""
        if any(".." in p.replace("\\", "/").split("/") for p in parts if p):
            raise RequestError(f"{'/'.join(parts)[:120]!r}: a name may not contain '..'")
        return "/".join([self.root, *[p.strip("/") for p in parts if p]])

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self.is_s3:
            return fsspec.filesystem("s3", **self.s3fs_options())
        return fsspec.filesystem("file", auto_mkdir=True)

    def s3fs_options(self) -> dict[str, Any]:
        s = self.settings
        opts: dict[str, Any] = {}
        if s.aws_access_key_id:
            opts["key"] = s.aws_access_key_id
            opts["secret"] = s.aws_secret_access_key
        if s.aws_session_token:
            opts["token"] = s.aws_session_token
        client: dict[str, Any] = {"region_name": s.region}
        if s.aws_endpoint_url:
            client["endpoint_url"] = s.aws_endpoint_url
        opts["client_kwargs"] = client
        return opts

    def delta_options(self) -> dict[str, str] | None:
        """storage_options for deltalake; None on a local folder."""
        if not self.is_s3:
            return None
        s = self.settings
        opts = {"AWS_REGION": s.region}
        if s.aws_access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = s.aws_access_key_id
            opts["AWS_SECRET_ACCESS_KEY"] = s.aws_secret_access_key or ""
        if s.aws_session_token:
            opts["AWS_SESSION_TOKEN"] = s.aws_session_token
        if s.aws_endpoint_url:
            opts["AWS_ENDPOINT_URL"] = s.aws_endpoint_url
            opts["AWS_ALLOW_HTTP"] = "true"
            opts["AWS_FORCE_PATH_STYLE"] = "true"
        # S3 and compatible stores support conditional PUT; delta-rs uses it to make commits
        # safe between concurrent writers without an external lock table.
        opts["conditional_put"] = "etag"
        return opts

    # -- plain objects (raw zone, JSON records, catalog files) -------------------------------
    def _path(self, url: str) -> str:
        return url.removeprefix("s3://") if self.is_s3 else url

    def exists(self, url: str) -> bool:
        return bool(self.fs.exists(self._path(url)))

    def read_bytes(self, url: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(url)))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise StorageError(f"cannot read {url}: {exc}") from exc

    def write_bytes(self, url: str, data: bytes) -> None:
        """Write an object atomically: readers see the old object or the new one, never half."""
        path = self._path(url)
        try:
            if self.is_s3:
                self.fs.pipe_file(path, data)
                return
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except Exception as exc:
            raise StorageError(f"cannot write {url}: {exc}") from exc

    def list(self, url: str) -> list[str]:
        """Full URLs of the objects directly under a location ([] if it does not exist)."""
        path = self._path(url)
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        prefix = "s3://" if self.is_s3 else ""
        return sorted(prefix + n for n in names)

    def delete(self, url: str) -> None:
        path = self._path(url)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
