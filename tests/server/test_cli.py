"""`lake serve` as a user runs it: a real process answering on 127.0.0.1 until stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import LakeFixture, free_port

LAKE = Path(sys.executable).parent / "lake"


@pytest.mark.slow
def test_lake_serve_command(lake_fixture: LakeFixture) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LAKE_ROOT": lake_fixture.settings.root,
        "LAKE_REGISTRY": lake_fixture.settings.registry,
    }
    proc = subprocess.Popen(
        [str(LAKE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/erddap/info/index.csv", timeout=5)
                body = r.text
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert body is not None, "lake serve did not answer"
        assert "ndbc-44029-ocean" in body and "rt-buoys" in body
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert b"GET /erddap/info/index.csv 200" in out  # the request log
