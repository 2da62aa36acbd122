"""What the cluster tests share: lakes built the same way twice, and a worker plugin that
holds a worker still at a chosen moment so a test can kill it there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from distributed.diagnostics.plugin import WorkerPlugin

from lake.storage import Storage
from lake.tables import KEY_COLUMNS, ObservationTable
from tests.support.dask_cluster import DaskCluster

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

#: Set at write time: differs between two lakes written the same way.
WRITE_TIME = ("ingested_at",)


def table_rows(storage: Storage, drop: tuple[str, ...] = ()) -> pa.Table:
    """Every stored row, in key order, less the columns in `drop` (to compare lakes)."""
    rows = ObservationTable(storage).dataset().to_table()
    rows = rows.select(sorted(n for n in rows.schema.names if n not in drop))
    return rows.sort_by([(c, "ascending") for c in KEY_COLUMNS])


def duplicate_keys(storage: Storage) -> int:
    """Rows minus distinct keys: 0 when every key is in the table once."""
    rows = ObservationTable(storage).dataset().to_table(columns=list(KEY_COLUMNS))
    distinct = rows.group_by(list(KEY_COLUMNS)).aggregate([]).num_rows
    return rows.num_rows - distinct


def key_count(rows: pa.Table) -> int:
    return rows.group_by(list(KEY_COLUMNS)).aggregate([]).num_rows


def not_null(rows: pa.Table, column: str) -> int:
    return int(pc.sum(pc.is_valid(rows[column])).as_py() or 0)


class HoldAfterTask(WorkerPlugin):
    """A Dask worker plugin: on the worker at `address`, once a task of `function` has run
    (its result not yet reported to the scheduler), write `marker` and hold the worker's
    event loop, so the worker looks alive but reports nothing until the test kills it.

    Kept in a module the workers can import (the repository is on their PYTHONPATH).
    """

    name = "hold-after-task"

    def __init__(self, address: str, function: str, marker: Path) -> None:
        self.address = address
        self.function = function
        self.marker = str(marker)
        self.worker: Any = None

    def setup(self, worker: Any) -> None:
        self.worker = worker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        from dask.utils import key_split

        if self.worker is None or self.worker.address != self.address:
            return
        if (start, finish) != ("executing", "memory") or key_split(key) != self.function:
            return
        if Path(self.marker).exists():
            return
        Path(self.marker).write_text(str(key))
        # Held until the test kills this process (bounded, so a failing test ends).
        threading.Event().wait(timeout=300)


def kill_when_held(
    cluster: DaskCluster, function: str, marker: Path, job: Callable[[Client], T]
) -> tuple[T, str, str]:
    """Run `job(client)` in a thread while one worker is held after its first task of
    `function` (HoldAfterTask), SIGKILL that worker there, and let the job finish on the
    other. Returns the job's result, the held task's key and the surviving worker."""
    victim, survivor = sorted(cluster.workers)
    outcome: dict[str, Any] = {}
    with cluster.client() as client:
        client.register_plugin(HoldAfterTask(victim, function, marker))

        def run() -> None:
            try:
                outcome["result"] = job(client)
            except BaseException as exc:  # handed to the test below
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while not marker.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the held task's marker file
        assert marker.exists(), f"the victim worker never finished a task of {function}"
        cluster.kill_worker(victim)
        thread.join(timeout=300)
    assert not thread.is_alive(), "the job did not finish on the surviving worker"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], marker.read_text(), survivor
