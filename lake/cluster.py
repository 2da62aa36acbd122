"""Where the heavy jobs run: the Dask scheduler a data manager names, else a local cluster.

Every job that fans out (backfill reads, QC reprocessing, compaction, grid ingest, archive
packages, the catalog build) asks this module for a client and hands it plain functions of
picklable arguments. The `Storage` they receive carries the settings, credentials included,
so a worker on another machine reaches the same bucket. Tasks that fail are retried by the
scheduler (`retries`); they must therefore write nothing a second run would duplicate:
either they return rows for the client to commit once, or they write by key (a merge) or
into a place named by their input.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client, Future

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A task that fails (a worker lost mid-task, a transient storage error) is run again this
#: many times, possibly on another worker, before the job fails.
TASK_RETRIES = 2


@contextmanager
def dask_client(address: str | None = None, workers: int = 2) -> Iterator[Client]:
    """A client of the scheduler at `address`, or of a local cluster of spawned processes.

    Processes, not threads: the work is CPU-bound NumPy and Parquet; spawn, because delta-rs
    panics in forked children.
    """
    import dask
    from distributed import Client, LocalCluster

    # Dask's own lines (workers registered, comms closed) say nothing to a data manager;
    # its warnings and errors still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        log.info("sending the work to the Dask scheduler at %s", address)
        with Client(address) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        log.info("started a local Dask cluster of %d worker processes", workers)
        yield client


@contextmanager
def job_client(
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    default_scheduler: str | None = None,
    in_process: bool = False,
) -> Iterator[Client | None]:
    """The client a job runs on, chosen once for every heavy job the same way.

    In order: the `client` given (a caller running several jobs on one cluster); the
    scheduler at `scheduler`, else at `default_scheduler` (LAKE_DASK_SCHEDULER); a local
    cluster of `workers` processes when `workers` is given. Otherwise a local cluster of
    two processes, or None when the job says it is better run `in_process` (see `run_tasks`).
    """
    if client is not None:
        yield client
        return
    address = scheduler or default_scheduler
    if address or workers is not None or not in_process:
        with dask_client(address, workers if workers is not None else 2) as own:
            yield own
        return
    yield None


def describe(client: Client | None) -> str:
    """Where the tasks go, in a data manager's words, for log lines."""
    if client is None:
        return "this process (no Dask scheduler named)"
    address = getattr(client.scheduler, "address", None) or "?"
    if getattr(client, "cluster", None) is not None:
        return f"a local Dask cluster ({address})"
    return f"the Dask scheduler at {address}"


def run_tasks(
    client: Client | None,
    fn: Callable[..., T],
    items: Sequence[Any],
    *args: Any,
    what: str = "tasks",
    retries: int = TASK_RETRIES,
) -> list[T]:
    """`fn(item, *args)` for every item on the cluster, results in the items' order.

    Logs progress as tasks finish (a data manager watching a long job sees how far it got).
    With no client, the items are run one after the other in this process (same results,
    same log), for jobs whose tasks are small or must not run side by side in memory.
    """
    if not items:
        return []
    if client is None:
        started = time.monotonic()
        step = max(1, len(items) // 10)
        done_here: list[T] = []
        for done, item in enumerate(items, start=1):
            done_here.append(fn(item, *args))
            if done % step == 0 or done == len(items):
                log.info(
                    "%s: %d of %d done (%.0f s)", what, done, len(items), time.monotonic() - started
                )
        return done_here
    futures = map_tasks(client, fn, items, *args, what=what, retries=retries)
    results: list[T] = client.gather(futures)  # type: ignore[no-untyped-call]
    return results


def map_tasks(
    client: Client,
    fn: Callable[..., Any],
    items: Sequence[Any],
    *args: Any,
    what: str = "tasks",
    retries: int = TASK_RETRIES,
) -> list[Future[Any]]:
    """`fn(item, *args)` for every item, waited for with progress logged, the results left
    on the workers (futures in the items' order): for results the next step reads where
    they are, such as grids whose chunks the workers then write themselves."""
    from distributed import as_completed

    if not items:
        return []
    started = time.monotonic()
    futures = client.map(
        fn, list(items), *[[a] * len(items) for a in args], pure=False, retries=retries
    )
    step = max(1, len(futures) // 10)
    for done, _ in enumerate(as_completed(futures), start=1):  # type: ignore[no-untyped-call]
        if done % step == 0 or done == len(futures):
            log.info(
                "%s: %d of %d done (%.0f s)",
                what,
                done,
                len(futures),
                time.monotonic() - started,
            )
    return list(futures)


def as_finished(client: Client, fn: Callable[..., T], items: list[Any], *args: Any) -> Iterator[T]:
    """`fn(item, *args)` on the cluster, results as they finish, with only a few tasks
    more than the cluster has threads in flight (their results wait in memory): for jobs
    that consume results as they come, such as a backfill committing every few million
    values."""
    from distributed import as_completed

    ahead = 2 * max(1, sum(client.nthreads().values())) + 2  # type: ignore[no-untyped-call]
    waiting = iter(items)
    running = as_completed()  # type: ignore[no-untyped-call]
    for item in itertools.islice(waiting, ahead):
        running.add(client.submit(fn, item, *args, pure=False, retries=TASK_RETRIES))  # type: ignore[no-untyped-call]
    for future in running:
        result: T = future.result()
        following = next(waiting, None)
        if following is not None:
            running.add(client.submit(fn, following, *args, pure=False, retries=TASK_RETRIES))  # type: ignore[no-untyped-call]
        future.release()
        yield result
