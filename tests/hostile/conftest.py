"""A real `lake serve` process over a real lake (NDBC 44029, real-time buoys, the ERSST grid),
for requests an attacker would send; the lake's files are hashed around every test."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import LakeFixture, free_port, lake_fixture

__all__ = ["lake_fixture"]

LAKE = Path(sys.executable).parent / "lake"
#: The query time limit of the served process (short, so slow-query tests stay quick).
SQL_TIMEOUT_S = 3
#: A hostile request must be answered within this many seconds.
ANSWER_WITHIN_S = 15.0


@dataclass
class Served:
    url: str
    root: Path
    proc: subprocess.Popen[bytes]


def tree_hash(root: Path) -> dict[str, str]:
    """Every file of the lake with the SHA-256 of its bytes: any write would change this."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def served(lake_fixture: LakeFixture) -> Iterator[Served]:
    """`lake serve` on a free port of 127.0.0.1, with small limits so tests can reach them."""
    port = free_port()
    env = {
        **os.environ,
        "LAKE_ROOT": lake_fixture.settings.root,
        "LAKE_REGISTRY": lake_fixture.settings.registry,
        "LAKE_SQL_TIMEOUT_S": str(SQL_TIMEOUT_S),
        "LAKE_SQL_MAX_BYTES": str(8 * 2**20),
        "LAKE_MAX_REQUESTS": "6",
        "LAKE_MAX_REQUESTS_PER_CLIENT": "4",
        "LAKE_PUBLIC_URL": "https://data.example.org/lake",
    }
    proc = subprocess.Popen(
        [str(LAKE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("lake serve did not answer")
        yield Served(url, Path(lake_fixture.settings.root), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("lake serve did not stop on SIGTERM") from None


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=ANSWER_WITHIN_S) as c:
        yield c


@pytest.fixture
def lake_unchanged_and_alive(served: Served) -> Iterator[None]:
    """After each server test: the lake's files are byte for byte the same and /healthz
    answers within a second."""
    before = tree_hash(served.root)
    yield
    started = time.monotonic()
    r = httpx.get(f"{served.url}/healthz", timeout=5)
    assert r.status_code == 200 and time.monotonic() - started < 1.0
    assert served.proc.poll() is None, "lake serve exited"
    assert tree_hash(served.root) == before, "the lake changed"
