"""Compaction on a Dask cluster: the plan made here, one task per partition on the workers.

`ObservationTable.compaction_plan` lists the partitions holding small files; each is
rewritten by `rewrite_partition` in its own commit (retried if another commit won the race),
so partitions are independent tasks. A task that is run again (its worker died after the
commit, before the scheduler heard of it) reads the partition as it is now and writes the
same rows sorted again: the rows are replaced, never added, so no key is duplicated.

Memory: a task holds the rows of the partition it rewrites (a backfilled month of a busy
variable is a few hundred MB), so a worker needs that much per thread. Workers started for
compaction should have one thread each (`dask worker --nthreads 1`, as the local cluster
here has); without a named scheduler or `workers`, the partitions are rewritten one after
the other in this process, as before there was a cluster: the peak is then one partition,
where a local cluster of N processes would need N at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lake.cluster import describe, job_client, run_tasks
from lake.errors import RequestError
from lake.storage import Storage
from lake.tables import SMALL_FILE_BYTES, ObservationTable, PartitionRewrite

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


def compact_partition(part: PartitionRewrite, storage: Storage) -> str:
    """Rewrite one partition's small files (a task on a worker); returns its predicate."""
    ObservationTable(storage).rewrite_partition(part)
    return part.predicate


def compact(
    storage: Storage,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    min_files: int = 2,
    small_bytes: int = SMALL_FILE_BYTES,
) -> int:
    """Compact the observation table; returns how many partitions were rewritten.

    `scheduler` is a Dask scheduler address (default LAKE_DASK_SCHEDULER); `workers` asks for
    a local cluster of that many processes; with neither (and no `client`), the partitions
    are rewritten in this process one at a time (see the module docstring on memory).
    """
    if min_files < 1:
        raise RequestError(f"min_files: must be at least 1, got {min_files}")
    plan = ObservationTable(storage).compaction_plan(min_files, small_bytes)
    if not plan:
        log.info("compaction: no partition holds %d or more small files", min_files)
        return 0
    files = sum(p.files for p in plan)
    with job_client(
        client,
        scheduler,
        workers,
        default_scheduler=storage.settings.dask_scheduler,
        in_process=True,
    ) as cluster:
        log.info(
            "compaction: sending %d partitions (%d small files) to %s",
            len(plan),
            files,
            describe(cluster),
        )
        done = run_tasks(
            cluster, compact_partition, plan, storage, what="compaction: partitions rewritten"
        )
    log.info("compaction: %d partitions rewritten, %d small files merged", len(done), files)
    return len(done)
