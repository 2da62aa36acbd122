"""A writer killed with SIGKILL mid-append leaves all or none of its batch; two writers at
once lose nothing and duplicate nothing. Real subprocesses, real local folder and real S3."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.conftest import REPO
from tests.lake.tables_support import batch

ROWS = 4000


def start_writer(
    settings: Settings, dataset_id: str, offset: int, rows: int = ROWS, repeat: int = 1
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("aws_access_key_id", "aws_secret_access_key", "aws_endpoint_url"):
        value = getattr(settings, name)
        if value:
            env[name.upper()] = value
    env["AWS_REGION"] = settings.region
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.lake.writer_proc",
            settings.root,
            dataset_id,
            str(offset),
            str(rows),
            str(repeat),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def counts_by_dataset(table: ObservationTable) -> dict[str, int]:
    stored = table.dataset().to_table(columns=["dataset_id"])
    out: dict[str, int] = {}
    for value in stored.column("dataset_id").to_pylist():
        out[value] = out.get(value, 0) + 1
    return out


@pytest.mark.slow
def test_sigkill_mid_write_leaves_all_or_none(any_settings: Settings) -> None:
    table = ObservationTable(Storage.from_settings(any_settings))
    table.write(batch(100))
    # Measure one undisturbed write so the kills land before, during and after the commit.
    probe = start_writer(any_settings, "probe", 0)
    started = time.perf_counter()
    probe.communicate("go\n", timeout=120)
    duration = time.perf_counter() - started
    rng = random.Random(20261124)
    kills = 10 if not any_settings.is_s3 else 5
    outcomes = []
    for k in range(kills):
        writer = start_writer(any_settings, f"kill{k}", (k % 8) * ROWS)
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
        time.sleep(rng.uniform(0.0, duration * 1.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
        counts = counts_by_dataset(ObservationTable(Storage.from_settings(any_settings)))
        got = counts.get(f"kill{k}-0", 0)
        assert got in (0, ROWS), f"kill {k}: {got} rows of a {ROWS}-row batch survived"
        outcomes.append(got == ROWS)
        # The table stays usable: the next write after a kill succeeds.
    after = ObservationTable(Storage.from_settings(any_settings))
    assert after.write(batch(50, 500, dataset_id="after")).inserted == 50
    assert counts_by_dataset(after)["ndbc-44013-stdmet"] == 100
    # Some kills should have happened before the commit; with our timing, nearly always true.
    assert len(outcomes) == kills


@pytest.mark.slow
def test_two_writers_at_once_lose_and_duplicate_nothing(any_settings: Settings) -> None:
    table = ObservationTable(Storage.from_settings(any_settings))
    table.create()
    repeat = 5
    writers = [
        start_writer(any_settings, name, i * ROWS * repeat, ROWS // 4, repeat)
        for i, name in enumerate(["left", "right"])
    ]
    # Both also write one identical batch: merge on keys must leave it once.
    same = [start_writer(any_settings, "same", 0, ROWS // 4) for _ in range(2)]
    for process in writers + same:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in writers + same:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        assert "done" in out
    counts = counts_by_dataset(ObservationTable(Storage.from_settings(any_settings)))
    for name in ("left", "right"):
        for i in range(repeat):
            assert counts[f"{name}-{i}"] == ROWS // 4
    assert counts["same-0"] == ROWS // 4
