"""One hierarchy of errors, each message built from structured parts kept as attributes.

Catch broadly only at the edges (the CLI, the server, the per-stream loop); everywhere else
let these travel so the message a data manager reads names the source, the file and the fault.
"""

from __future__ import annotations


class LakeError(Exception):
    """Base of every error coastlake raises on purpose."""


class ConfigError(LakeError):
    """The settings or the stream registry are wrong; nothing runs until they are fixed."""

    def __init__(
        self,
        what: str,
        *,
        file: str | None = None,
        stream: str | None = None,
        field: str | None = None,
    ) -> None:
        self.what = what
        self.file = file
        self.stream = stream
        self.field = field
        where = []
        if file:
            where.append(f"file {file}")
        if stream:
            where.append(f"stream {stream!r}")
        if field:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {what}" if prefix else what)


class SourceError(LakeError):
    """A data source gave us something we could not use."""

    def __init__(self, *, source: str, what: str, file: str | None = None, url: str | None = None):
        self.source = source
        self.what = what
        self.file = file
        self.url = url
        parts = [f"stream {source}"]
        if url:
            parts.append(f"url {url}")
        if file:
            parts.append(f"raw file {file}")
        super().__init__(f"{', '.join(parts)}: {what}")


class FetchError(SourceError):
    """The source could not be reached or answered with an error status."""


class ParseError(SourceError):
    """The response arrived but no valid data could be read from it (a failed syntax test)."""


class StorageError(LakeError):
    """The lake's storage refused a read or a write."""


class NotFound(LakeError):
    """A dataset, station, stream or object that was asked for does not exist."""


class RequestError(LakeError):
    """A request the server refuses (4xx), with the reason a client can act on."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
