"""A real writer process for crash and concurrency tests.

python -m tests.lake.writer_proc ROOT DATASET_ID OFFSET ROWS [REPEAT]
Prints 'ready' once imports are done, waits for a line on stdin, then writes REPEAT batches
(each merge one commit) and prints 'done'. S3 settings come from the environment.
"""

from __future__ import annotations

import sys

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.lake.tables_support import batch


def main() -> None:
    root, dataset_id, offset, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    table = ObservationTable(Storage.from_settings(Settings(root=root)))
    batches = [
        batch(rows, offset + i * rows, dataset_id=f"{dataset_id}-{i}") for i in range(repeat)
    ]
    print("ready", flush=True)
    sys.stdin.readline()
    for b in batches:
        table.write(b)
    print("done", flush=True)


if __name__ == "__main__":
    main()
