"""Cadence, conditional requests and the watch loop: re-running is harmless and cheap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coastlake.harvest import HarvestOptions, harvest_streams
from ingest.schedule import due_streams, last_attempts, watch
from lake.harvest_log import HarvestLog
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.conftest import REPO
from tests.ingest.support import NDBC, QUICK, data_records, harvest, make_stream

LAKE = str(Path(sys.executable).parent / "lake")


def ocean(url: str, cadence: str = "1h"):
    return make_stream(
        "ocean-44029",
        {"kind": "ndbc", "url": url, "file": "ocean", "stations": ["44029"]},
        cadence=cadence,
    )


def test_unchanged_source_costs_a_304_and_writes_nothing(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44029.ocean"] = NDBC / "data/realtime2/44029.ocean"
    stream = ocean(http_server.url)
    [first] = data_records(harvest(storage, stream))
    assert first.status == "ok" and first.rows_added > 0 and first.etag
    version = ObservationTable(storage).delta().version()
    [again] = data_records(harvest(storage, stream))
    assert again.status == "unchanged" and again.rows_added == 0
    sent = http_server.hits[-1][1]
    assert sent.get("If-None-Match") == first.etag  # the server answered 304
    assert ObservationTable(storage).delta().version() == version


def test_due_by_last_attempt_and_cadence(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44029.ocean"] = NDBC / "data/realtime2/44029.ocean"
    hourly = ocean(http_server.url, "1h")
    never = make_stream("never-run", {"kind": "ndbc", "url": http_server.url, "stations": ["1"]})
    assert due_streams(storage, [hourly, never]) == [hourly, never]
    harvest(storage, hourly)
    now = datetime.now(UTC)
    assert due_streams(storage, [hourly, never], now) == [never]
    later = now + timedelta(hours=1, seconds=1)
    assert due_streams(storage, [hourly, never], later) == [hourly, never]


def test_watch_harvests_at_the_cadence_until_stopped(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/44029.ocean"] = NDBC / "data/realtime2/44029.ocean"
    stream = ocean(http_server.url, "2s")
    stop = threading.Event()
    rounds: list[int] = []

    def run(due):
        records = harvest_streams(storage, due, HarvestOptions(policy=QUICK), qc_step=None)
        rounds.append(len(records))
        if len(rounds) == 2:
            stop.set()  # what Ctrl-C does in the CLI
        return records

    done = watch(storage, [stream], run, stop=stop, max_rounds=10)
    assert len(rounds) == 2 and done >= 2
    log = HarvestLog(storage).read().sort_by("started_at").to_pylist()
    attempts = [r["started_at"] for r in log if r["label"] != "metadata"]
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= timedelta(seconds=2)  # waited for the cadence
    assert stream.id in last_attempts(storage)


@pytest.mark.slow
def test_cli_runs_only_what_is_due(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    data = (REPO / "registry" / "data" / "www.ndbc.noaa.gov").as_posix()
    registry.write_text(
        "streams:\n"
        "  - id: ocean-44029\n"
        "    title: A01 ocean\n"
        "    provider: {name: NDBC}\n"
        "    category: federal\n"
        f"    source: {{kind: ndbc, url: 'file://{data}', file: ocean, stations: ['44029']}}\n"
        "    cadence: 1h\n"
    )
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake"), "LAKE_REGISTRY": str(registry)}

    def lake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LAKE, "harvest", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )

    first = lake()
    assert first.returncode == 0, first.stderr
    assert "1 streams" in first.stderr and "new values" in first.stderr
    second = lake()
    assert second.returncode == 0 and "nothing is due" in second.stderr
