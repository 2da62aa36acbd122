"""Many slow queries at once: each client gets its share, the rest are told to wait (429),
and /healthz answers within a second throughout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.hostile.conftest import Served

#: Every test here: the lake byte for byte unchanged and /healthz alive afterwards.
pytestmark = pytest.mark.usefixtures("lake_unchanged_and_alive")

SLOW = "SELECT count(*) FROM range(1000000000000) a, range(1000) b"


def test_slow_queries_do_not_starve_healthz(served: Served) -> None:
    done = threading.Event()
    health: list[float] = []
    problems: list[str] = []

    def poll_health() -> None:
        with httpx.Client(base_url=served.url, timeout=10) as c:
            while not done.is_set():
                started = time.monotonic()
                try:
                    status = c.get("/healthz").status_code
                except httpx.HTTPError as exc:
                    status = 0
                    problems.append(repr(exc))
                health.append(time.monotonic() - started if status == 200 else 99.0)
                time.sleep(0.1)

    def slow_queries(_: int) -> list[int]:
        """Slow queries one after the other for a few seconds (a refused one retried)."""
        out = []
        until = time.monotonic() + 8
        with httpx.Client(base_url=served.url, timeout=60) as c:
            while time.monotonic() < until:
                out.append(c.get("/sql", params={"q": SLOW}).status_code)
                time.sleep(0.5)
        return out

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        with ThreadPoolExecutor(24) as pool:
            statuses = [s for done_ in pool.map(slow_queries, range(24)) for s in done_]
    finally:
        done.set()
        poller.join()
    assert set(statuses) <= {408, 429, 503}, statuses
    assert statuses.count(408) >= 1  # some ran to the time limit
    assert statuses.count(429) >= 1  # the others were told to come back
    assert not problems, problems
    assert len(health) >= 5 and max(health) < 1.0, health
