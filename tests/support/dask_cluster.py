"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on 127.0.0.1.

The processes are started with the `dask` command line, as a deployment starts them, with
the repository on PYTHONPATH and without any LAKE_* or AWS_* variable: whatever a task needs
(the lake's settings, credentials included) must reach it through its arguments.

Workers run without a nanny, so a worker's PID is the process that runs the tasks and a
killed worker stays dead (a nanny would start a new one and hide the loss).

Use the `dask_cluster` fixture (import it into a test module or a conftest; pytest finds
it by its name, so the import looks unused)::

    from tests.support.dask_cluster import DaskCluster, dask_cluster_fixture  # noqa: F401

    def test_x(dask_cluster: DaskCluster) -> None:
        with dask_cluster.client() as client:
            ...
        ran = dask_cluster.task_log()  # [{"key": ..., "worker": ..., ...}, ...]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from distributed import Client

REPO = Path(__file__).resolve().parent.parent.parent
#: Seconds allowed for the processes to start and register (a loaded 2-core CI machine).
START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKE_", "AWS_", "DASK_", "PYTHONPATH"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class TaskRun:
    """One task as the scheduler's task stream recorded it."""

    key: str
    worker: str
    status: str

    @property
    def name(self) -> str:
        """The function part of the key (`rewrite_partition-3f2a…` -> `rewrite_partition`)."""
        from dask.utils import key_split

        return str(key_split(self.key))


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a `dask` CLI process."""

    address: str
    scheduler: subprocess.Popen[bytes]
    #: worker address (as the scheduler knows it) -> process
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def worker_pids(self) -> dict[str, int]:
        """Worker address -> PID."""
        return {address: p.pid for address, p in self.workers.items()}

    def client(self) -> Client:
        from distributed import Client

        return Client(self.address, timeout=START_TIMEOUT)  # type: ignore[no-untyped-call]

    def kill_worker(self, address: str) -> None:
        """SIGKILL one worker (no goodbye to the scheduler, as when a machine dies)."""
        process = self.workers[address]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def task_log(self) -> list[TaskRun]:
        """Every task the scheduler saw finish (or fail) since the cluster started."""
        with self.client() as client:
            stream: list[dict[str, Any]] = client.get_task_stream()  # type: ignore[no-untyped-call]
        return [TaskRun(str(t["key"]), str(t["worker"]), str(t["status"])) for t in stream]

    def workers_that_ran(self, function_name: str) -> set[str]:
        """Addresses of the workers that finished a task of `function_name`."""
        return {t.worker for t in self.task_log() if t.name == function_name and t.status == "OK"}

    def stop(self) -> None:
        """Workers first, then the scheduler; a process that does not end on SIGTERM within
        a few seconds (a worker busy in a task) is killed: nothing of a test is left to save.
        """
        for group in (list(self.workers.values()), [self.scheduler]):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=20)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process whose stderr (Dask's log) goes to `log`, read when a test fails."""
    with log.open("wb") as err:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)


def start_dask_cluster(directory: Path, n_workers: int = 2) -> DaskCluster:
    """Start `dask scheduler` and `n_workers` single-threaded `dask worker` processes."""
    port = free_port()
    env = _clean_env()
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{port}"
    log_dir = directory / "dask-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    scheduler = _start(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env,
        log_dir / "scheduler.log",
    )
    cluster = DaskCluster(address, scheduler)
    procs = [
        _start(
            [
                dask,
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"w{i}",
                "--local-directory",
                str(directory / f"w{i}"),
            ],
            env,
            log_dir / f"w{i}.log",
        )
        for i in range(n_workers)
    ]
    try:
        with cluster.client() as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT)
            by_pid = {p.pid: p for p in procs}
            pids: dict[str, int] = client.run(os.getpid)  # type: ignore[no-untyped-call]
            cluster.workers = {address: by_pid[pid] for address, pid in pids.items()}
            # The task stream is recorded from its first request on: ask now, so the log
            # holds every task a test sends.
            client.get_task_stream(count=0)  # type: ignore[no-untyped-call]
    except BaseException:
        for p in procs:
            p.kill()
        scheduler.kill()
        raise
    return cluster


@pytest.fixture(name="dask_cluster")
def dask_cluster_fixture(tmp_path: Path) -> Iterator[DaskCluster]:
    """A scheduler and two worker processes on 127.0.0.1, stopped after the test."""
    cluster = start_dask_cluster(tmp_path / "dask")
    try:
        yield cluster
    finally:
        cluster.stop()
