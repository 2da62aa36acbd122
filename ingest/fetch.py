"""Fetching over real HTTP (and file:// for offline registries): timeouts, retries with
backoff, and conditional requests so an unchanged source costs nothing."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from ingest.base import RawResponse, Request
from lake.errors import FetchError

log = logging.getLogger(__name__)

USER_AGENT = "coastlake/0.1 (regional ocean data lake harvester)"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Validators:
    """What the source said last time, sent back so it can answer 304 Not Modified."""

    etag: str | None = None
    last_modified: str | None = None


def _fetch_file(stream_id: str, request: Request) -> RawResponse:
    path = Path(unquote(urlparse(request.url).path))
    try:
        body = path.read_bytes()
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


def _said(reply: httpx.Response, limit: int = 160) -> str:
    """The start of an error body as one line of text (tags dropped), for the message."""
    try:
        text = reply.text
    except (UnicodeDecodeError, LookupError):
        return ""
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def fetch(
    stream_id: str,
    request: Request,
    *,
    policy: FetchPolicy = FetchPolicy(),
    validators: Validators | None = None,
    client: httpx.Client | None = None,
) -> RawResponse | None:
    """Fetch one request. None means the source answered 304: nothing new since last time.

    Retries timeouts, connection errors and 5xx with exponential backoff; a 4xx is final.
    Raises FetchError naming the stream, the URL and what went wrong.
    """
    if request.url.startswith("file://"):
        return _fetch_file(stream_id, request)
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
            try:
                reply = http.get(
                    request.url,
                    params=request.params or None,
                    headers=headers,
                    timeout=policy.timeout_s,
                )
            except httpx.TimeoutException:
                last_problem = f"no answer within {policy.timeout_s:g} s (timeout)"
            except httpx.HTTPError as exc:
                last_problem = f"connection failed: {exc}"
            else:
                if reply.status_code == 304:
                    return None
                if reply.status_code < 400:
                    return RawResponse(
                        stream_id=stream_id,
                        url=str(reply.url),
                        body=reply.content,
                        fetched_at=datetime.now(UTC),
                        content_type=reply.headers.get("content-type"),
                        status=reply.status_code,
                        etag=reply.headers.get("etag"),
                        last_modified=reply.headers.get("last-modified"),
                        label=request.label,
                    )
                last_problem = f"HTTP {reply.status_code} {reply.reason_phrase}"
                said = _said(reply)
                if said:
                    last_problem += f" (the server said: {said})"
                if reply.status_code < 500 and reply.status_code != 429:
                    break
            if attempt <= policy.retries:
                pause = policy.backoff_s * 2 ** (attempt - 1)
                log.info("stream=%s %s; trying again in %.1f s", stream_id, last_problem, pause)
                time.sleep(pause)
    finally:
        if own:
            http.close()
    raise FetchError(source=stream_id, url=request.url, what=last_problem)
