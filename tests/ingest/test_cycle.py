"""Harvest cycles: many streams in one commit, the same rows and flags as one at a time;
an unchanged cycle writes nothing; a real-time poll sends only what is new; a killed or
racing cycle leaves every key once; catalog-only feeds never wake the watch loop."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from coastlake.harvest import HarvestOptions, harvest_stream, harvest_streams
from ingest.schedule import due_streams, watch
from lake.delta import open_table
from lake.harvest_log import HarvestRecord
from lake.reader import Lake
from lake.registry import Stream, load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
from lake.tables import KEY_COLUMNS, ObservationTable
from tests.conftest import REPO
from tests.ingest.support import NDBC, QUICK, data_records, make_stream

STREAMS = ("ndbc-44013-stdmet", "ndbc-44029-ocean", "ndbc-44013-spec")


def sample_streams() -> list[Stream]:
    registry = load_registry(SAMPLE_REGISTRY)
    return [registry.get(s) for s in STREAMS]


def stored(storage: Storage) -> pa.Table:
    """Every stored row without the ingest time, in key order."""
    rows = ObservationTable(storage).dataset().to_table().drop_columns(["ingested_at"])
    return rows.sort_by([(c, "ascending") for c in KEY_COLUMNS])


def versions(storage: Storage) -> dict[str, int | None]:
    out = {}
    for name in ("observations", "stations", "series"):
        table = open_table(storage.url("tables", name), storage.delta_options())
        out[name] = table.version() if table is not None else None
    return out


def parquet_files(storage: Storage) -> int:
    """Files of the data tables (the harvest log records every attempt, by design)."""
    tables = Path(storage.root) / "tables"
    return sum(
        len(list((tables / t).rglob("*.parquet"))) for t in ("observations", "stations", "series")
    )


def duplicate_keys(storage: Storage) -> int:
    counted = Lake(storage).sql(
        "select count(*) - count(distinct (dataset_id, station_id, variable, z, time)) "
        "from observations_all"
    )
    return int(counted.column(0)[0].as_py())


def test_a_cycle_gives_the_rows_and_flags_of_one_stream_at_a_time(tmp_path: Path) -> None:
    together = Storage.from_settings(Settings(root=str(tmp_path / "together")))
    apart = Storage.from_settings(Settings(root=str(tmp_path / "apart")))
    streams = sample_streams()
    records = harvest_streams(together, streams)
    assert all(r.status == "ok" for r in records), records
    # One merge commit for all three streams (version 0 is the table's creation).
    assert ObservationTable(together).delta().version() == 1
    for stream in streams:
        harvest_stream(apart, stream)
    assert ObservationTable(apart).delta().version() == len(streams)
    a, b = stored(together), stored(apart)
    assert a.num_rows == b.num_rows > 30_000
    for column in a.column_names:
        assert a.column(column).equals(b.column(column)), column
    flagged = pc.sum(pc.greater_equal(a.column("qc_agg"), 3)).as_py()
    assert flagged > 0  # QC ran and flagged something: the comparison covers flags too


def test_an_unchanged_cycle_writes_nothing(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    streams = sample_streams()
    harvest_streams(storage, streams)
    before, files = versions(storage), parquet_files(storage)
    again = data_records(harvest_streams(storage, streams))
    assert {r.status for r in again} == {"unchanged"}
    assert sum(r.rows_added for r in again) == 0
    assert versions(storage) == before
    assert parquet_files(storage) == files


def test_a_real_time_poll_sends_only_new_values(http_server, local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    text = (NDBC / "data/realtime2/44029.ocean").read_text()
    header, rows = text.splitlines(keepends=True)[:2], text.splitlines(keepends=True)[2:]
    http_server.routes["/data/realtime2/44029.ocean"] = "".join(header + rows).encode()
    stream = make_stream(
        "ocean", {"kind": "ndbc", "url": http_server.url, "file": "ocean", "stations": ["44029"]}
    )
    [first] = data_records(harvest_stream(storage, stream, HarvestOptions(policy=QUICK)))
    assert first.status == "ok" and first.rows_added > 1000
    version = ObservationTable(storage).delta().version()
    # The source publishes one more record (13:04 after 12:04): 2 values (OTMP and SAL).
    newer = "2022 06 05 13 04     1.0 13.40     MM 31.20    MM    MM     MM    MM    MM    MM\n"
    http_server.routes["/data/realtime2/44029.ocean"] = "".join([*header, newer, *rows]).encode()
    [second] = data_records(harvest_stream(storage, stream, HarvestOptions(policy=QUICK)))
    assert second.status == "ok"
    # Only the new record was parsed (the rest lies inside the span the lake holds) ...
    assert second.rows_in == 2 < first.rows_in
    assert second.rows_added == 2  # ... and only the new values were sent
    assert ObservationTable(storage).delta().version() == version + 1
    latest = (
        Lake(storage)
        .sql(
            "select variable, time, value from latest where dataset_id = 'ocean' order by variable"
        )
        .to_pylist()
    )
    assert [r["value"] for r in latest] == [pytest.approx(31.2), pytest.approx(13.4)]
    assert {str(r["time"]) for r in latest} == {"2022-06-05 13:04:00"}
    assert duplicate_keys(storage) == 0


def test_the_watch_loop_idles_on_catalog_only_feeds(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    external = make_stream("partner-glider", {"kind": "external", "url": "https://example.org"})
    assert due_streams(storage, [external]) == []
    ran: list[list[Stream]] = []

    def run(due: list[Stream]) -> list[HarvestRecord]:
        ran.append(due)
        return []

    rounds = watch(storage, [external], run, max_rounds=50)
    assert ran == [] and rounds == 1  # stopped at once: nothing will ever be due


_CYCLE = """
import sys
from coastlake.harvest import harvest_streams
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
registry = load_registry(SAMPLE_REGISTRY)
streams = [registry.get(s) for s in {streams!r}]
harvest_streams(Storage.from_settings(Settings(root=sys.argv[1])), streams)
"""


@pytest.mark.slow
def test_a_cycle_killed_at_random_points_leaves_every_key_once(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    clean = Storage.from_settings(Settings(root=str(tmp_path / "clean")))
    harvest_streams(clean, sample_streams())
    expected = stored(clean).num_rows
    script = tmp_path / "cycle.py"
    script.write_text(_CYCLE.format(streams=STREAMS))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, str(script), str(root)], env=env)
        time.sleep(rng.uniform(1.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        storage = Storage.from_settings(Settings(root=str(root)))
        if ObservationTable(storage).exists():
            assert duplicate_keys(storage) == 0
    done = subprocess.run([sys.executable, str(script), str(root)], env=env, timeout=600)
    assert done.returncode == 0
    storage = Storage.from_settings(Settings(root=str(root)))
    assert duplicate_keys(storage) == 0
    assert stored(storage).num_rows == expected


@pytest.mark.slow
def test_a_harvest_racing_a_compaction_keeps_every_key_once(tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    streams = sample_streams()
    harvest_streams(storage, streams[:1])
    stop = threading.Event()
    compactions: list[int] = []

    def compact() -> None:
        # Compaction after compaction, with a breath between: back to back (a commit every
        # few milliseconds on this tiny lake) a writer can lose twelve races in a row and
        # give up, which says nothing about keys kept once.
        while not stop.is_set():
            compactions.append(ObservationTable(storage).compact(min_files=1))
            stop.wait(0.2)

    racer = threading.Thread(target=compact)
    racer.start()
    try:
        records = harvest_streams(storage, streams[1:])
    finally:
        stop.set()
        racer.join()
    assert all(r.status == "ok" for r in data_records(records)), records
    assert len(compactions) >= 1
    clean = Storage.from_settings(Settings(root=str(tmp_path / "clean")))
    harvest_streams(clean, streams)
    assert duplicate_keys(storage) == 0
    assert stored(storage).num_rows == stored(clean).num_rows
