"""Fetching over real HTTP (and file:// for offline registries): timeouts, retries with
backoff, and conditional requests so an unchanged source costs nothing.

Every response is bounded: at most `max_bytes` once decoded (a Content-Encoding is undone
as it streams in, and a gzip body is measured inflated before anyone inflates it), within
`deadline_s` of wall time for the whole request, retries included (a server dripping a
byte at a time is cut off, however often it answers within the read timeout). A request
past a bound fails with a FetchError naming the bound; nothing of it is kept."""

from __future__ import annotations

import contextlib
import logging
import re
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from ingest.base import RawResponse, Request
from lake.errors import FetchError
from lake.registry import Stream
from lake.settings import get_settings

log = logging.getLogger(__name__)

USER_AGENT = "coastlake/0.1 (regional ocean data lake harvester)"


_CHUNK = 1 << 16


def _settings_max_bytes() -> int:
    return get_settings().fetch_max_bytes


def _settings_deadline_s() -> float:
    return get_settings().fetch_deadline_s


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Per read timeout, retries and their backoff, and the bounds of one response (by
    default LAKE_FETCH_MAX_BYTES and LAKE_FETCH_DEADLINE_S)."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0
    max_bytes: int = field(default_factory=_settings_max_bytes)
    deadline_s: float = field(default_factory=_settings_deadline_s)

    def for_stream(self, stream: Stream) -> FetchPolicy:
        """This policy with the stream's own byte limit (`source.max_bytes` in the registry)."""
        if stream.source.max_bytes is None:
            return self
        return replace(self, max_bytes=stream.source.max_bytes)


class TooLarge(Exception):
    """A response past its byte limit (never retried: the source would send it again)."""


class PastDeadline(Exception):
    """A request past its wall-time deadline."""


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def gzip_size(body: bytes, limit: int) -> int:
    """Size of a gzip body once inflated, counted without keeping it; TooLarge past `limit`."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    total = 0
    data = body
    while data:
        chunk = inflater.decompress(data, _CHUNK)
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the gzip body inflates to more than {_mb(limit)} (max_bytes)")
        data = inflater.unconsumed_tail
        if inflater.eof:
            # Concatenated members (as `gzip` writes them) inflate one after another.
            data = data or inflater.unused_data
            if data[:2] != b"\x1f\x8b":
                break
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    return total


def check_body(body: bytes, policy: FetchPolicy) -> None:
    """TooLarge if `body`, or what it inflates to when it is gzip, exceeds the byte limit."""
    if len(body) > policy.max_bytes:
        raise TooLarge(f"the response holds {_mb(len(body))}, more than {_mb(policy.max_bytes)}")
    if body[:2] == b"\x1f\x8b":
        with contextlib.suppress(zlib.error):  # not really gzip: the parser says what it is
            gzip_size(body, policy.max_bytes)


def _read_bounded(reply: httpx.Response, policy: FetchPolicy, deadline: float) -> bytes:
    """The decoded body, chunk by chunk, stopped past the byte limit or the deadline."""
    declared = reply.headers.get("content-length")
    encoded = "content-encoding" in reply.headers
    if declared and declared.isdigit() and not encoded and int(declared) > policy.max_bytes:
        raise TooLarge(
            f"the response declares {_mb(int(declared))}, more than {_mb(policy.max_bytes)}"
        )
    parts: list[bytes] = []
    held = 0
    for chunk in reply.iter_bytes():  # as the bytes arrive (a chunk size would wait to fill it)
        held += len(chunk)
        if held > policy.max_bytes:
            raise TooLarge(f"the response holds more than {_mb(policy.max_bytes)} (max_bytes)")
        if time.monotonic() > deadline:
            raise PastDeadline()
        parts.append(chunk)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Validators:
    """What the source said last time, sent back so it can answer 304 Not Modified."""

    etag: str | None = None
    last_modified: str | None = None


def _fetch_file(stream_id: str, request: Request, policy: FetchPolicy) -> RawResponse:
    path = Path(unquote(urlparse(request.url).path))
    try:
        if path.stat().st_size > policy.max_bytes:
            raise TooLarge(f"the file holds {_mb(path.stat().st_size)} (max_bytes)")
        body = path.read_bytes()
        check_body(body, policy)
    except TooLarge as exc:
        raise FetchError(source=stream_id, url=request.url, what=str(exc)) from None
    except FileNotFoundError:
        raise FetchError(source=stream_id, url=request.url, what="file not found") from None
    except OSError as exc:
        raise FetchError(source=stream_id, url=request.url, what=f"cannot read: {exc}") from None
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return RawResponse(
        stream_id=stream_id,
        url=request.url,
        body=body,
        fetched_at=datetime.now(UTC),
        last_modified=modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        label=request.label,
    )


def _said(reply: httpx.Response, policy: FetchPolicy, deadline: float, limit: int = 160) -> str:
    """The start of an error body as one line of text (tags dropped), for the message; an
    error body past 64 kB or the deadline is not read."""
    try:
        body = _read_bounded(reply, replace(policy, max_bytes=65536), deadline)
        text = body.decode(reply.encoding or "utf-8", "replace")
    except (TooLarge, PastDeadline, httpx.HTTPError, LookupError):
        return ""
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def fetch(
    stream_id: str,
    request: Request,
    *,
    policy: FetchPolicy | None = None,
    validators: Validators | None = None,
    client: httpx.Client | None = None,
) -> RawResponse | None:
    """Fetch one request. None means the source answered 304: nothing new since last time.

    Retries timeouts, connection errors and 5xx with exponential backoff; a 4xx, a body
    past the byte limit and the deadline are final. Raises FetchError naming the stream, the
    URL and what went wrong.
    """
    policy = policy or FetchPolicy()
    if request.url.startswith("file://"):
        return _fetch_file(stream_id, request, policy)
    deadline = time.monotonic() + policy.deadline_s
    headers = {"User-Agent": USER_AGENT}
    if validators and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    own = client is None
    http = client or httpx.Client(follow_redirects=True)
    last_problem = ""
    try:
        for attempt in range(1, policy.retries + 2):
            left = deadline - time.monotonic()
            if left <= 0:
                last_problem = f"no whole answer within the deadline of {policy.deadline_s:g} s"
                break
            try:
                # Each read waits at most the time left, so a slow drip ends at the deadline.
                timeout = httpx.Timeout(min(policy.timeout_s, left))
                with http.stream(
                    "GET",
                    request.url,
                    params=request.params or None,
                    headers=headers,
                    timeout=timeout,
                ) as reply:
                    if reply.status_code == 304:
                        return None
                    if reply.status_code < 400:
                        body = _read_bounded(reply, policy, deadline)
                        check_body(body, policy)
                        return RawResponse(
                            stream_id=stream_id,
                            url=str(reply.url),
                            body=body,
                            fetched_at=datetime.now(UTC),
                            content_type=reply.headers.get("content-type"),
                            status=reply.status_code,
                            etag=reply.headers.get("etag"),
                            last_modified=reply.headers.get("last-modified"),
                            label=request.label,
                        )
                    said = _said(reply, policy, deadline)
                    last_problem = f"HTTP {reply.status_code} {reply.reason_phrase}"
                    if said:
                        last_problem += f" (the server said: {said})"
                    if reply.status_code < 500 and reply.status_code != 429:
                        break
            except TooLarge as exc:
                raise FetchError(source=stream_id, url=request.url, what=str(exc)) from None
            except PastDeadline:
                last_problem = f"no whole answer within the deadline of {policy.deadline_s:g} s"
                break
            except httpx.TimeoutException:
                if time.monotonic() >= deadline:
                    last_problem = f"no whole answer within the deadline of {policy.deadline_s:g} s"
                    break
                last_problem = f"no answer within {policy.timeout_s:g} s (timeout)"
            except httpx.HTTPError as exc:
                last_problem = f"connection failed: {exc}"
            if attempt <= policy.retries:
                pause = min(policy.backoff_s * 2 ** (attempt - 1), deadline - time.monotonic())
                if pause <= 0:
                    continue
                log.info("stream=%s %s; trying again in %.1f s", stream_id, last_problem, pause)
                time.sleep(pause)
    finally:
        if own:
            http.close()
    raise FetchError(source=stream_id, url=request.url, what=last_problem)
