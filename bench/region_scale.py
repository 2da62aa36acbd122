"""The region's heavy jobs on Dask clusters of 1, 2 and 4 worker processes.

Each worker count gets its own empty lake: `lake harvest --since ... --workers N` backfills
the region (requests read, parsed and flagged on the workers, committed by the job), then
`lake compact --workers N` compacts it. Beside each figure: the in-process backfill of the
same run (threads, no cluster), and how the figure grows from one worker. Memory is the
peak of the whole process tree (the job and its worker processes), sampled every 0.2 s.

BENCH_REGION_WORKERS (default "1,2,4") and BENCH_REGION_SCALE ("backfill,compaction")
choose what runs. On these two cores more than two workers only share the same cores:
the figures say what the cluster costs, not what more machines would give.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import Result

WORKERS = [int(n) for n in os.environ.get("BENCH_REGION_WORKERS", "1,2,4").split(",") if n]
STEPS = set(os.environ.get("BENCH_REGION_SCALE", "backfill,compaction").split(","))
SUMMARY = re.compile(r"([\d,]+) new values")


@dataclass
class TreeRun:
    """A command's wall time, exit code, log and the peak memory of its process tree."""

    wall_s: float
    code: int
    tree_peak_mb: float
    stderr: str


def run_tree(command: list[str], env: dict[str, str], log: Path) -> TreeRun:
    """Run `command`, sampling the RSS of it and all its descendants."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    with log.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            total = 0
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:  # a process ended while being sampled
                pass
            peak = max(peak, total)
            time.sleep(0.2)
        wall = time.perf_counter() - start
    return TreeRun(wall, proc.returncode, peak / 2**20, log.read_text(errors="replace"))


def scale_out(
    lake_cmd: Path,
    base: Path,
    registry: Path,
    stream: str,
    since: str,
    in_process_s: float | None,
) -> list[Result]:
    """Backfill and compaction of the region with each worker count in WORKERS."""
    results: list[Result] = []
    first: dict[str, float] = {}
    for n in WORKERS:
        lake = base / f"lake-workers-{n}"
        shutil.rmtree(lake, ignore_errors=True)
        env = {
            **os.environ,
            "LAKE_ROOT": str(lake),
            "LAKE_REGISTRY": str(registry),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        env.pop("LAKE_DASK_SCHEDULER", None)
        if "backfill" in STEPS:
            print(f"  [scale_out] backfill on {n} worker processes ...", flush=True)
            run = run_tree(
                [
                    str(lake_cmd),
                    "harvest",
                    "--stream",
                    stream,
                    "--since",
                    since,
                    "--workers",
                    str(n),
                ],
                env,
                base / "logs" / f"scale_backfill_{n}.err",
            )
            found = SUMMARY.findall(run.stderr)
            values = int(found[-1].replace(",", "")) if found else 0
            first.setdefault("backfill", run.wall_s)
            detail: dict[str, Any] = {
                "workers": n,
                "exit_code": run.code,
                "values": values,
                "values_per_s": round(values / run.wall_s) if run.wall_s else None,
                "tree_peak_rss_mb": round(run.tree_peak_mb),
                "wall_vs_one_worker": round(run.wall_s / first["backfill"], 3),
            }
            print(
                f"  [scale_out] {run.wall_s:.1f} s, tree peak {run.tree_peak_mb:.0f} MB", flush=True
            )
            results.append(
                Result(
                    f"scale_out_backfill_{n}_workers",
                    "the same backfill in one process (threads), this run",
                    run.wall_s,
                    in_process_s,
                    values,
                    detail,
                )
            )
        if "compaction" in STEPS and lake.exists():
            print(f"  [scale_out] compaction on {n} worker processes ...", flush=True)
            run = run_tree(
                [str(lake_cmd), "compact", "--workers", str(n)],
                env,
                base / "logs" / f"scale_compact_{n}.err",
            )
            found_parts = re.search(r"compacted (\d+) partitions", run.stderr)
            first.setdefault("compaction", run.wall_s)
            print(
                f"  [scale_out] {run.wall_s:.1f} s, tree peak {run.tree_peak_mb:.0f} MB", flush=True
            )
            results.append(
                Result(
                    f"scale_out_compaction_{n}_workers",
                    "-",
                    run.wall_s,
                    None,
                    int(found_parts.group(1)) if found_parts else 0,
                    {
                        "workers": n,
                        "exit_code": run.code,
                        "partitions": int(found_parts.group(1)) if found_parts else None,
                        "tree_peak_rss_mb": round(run.tree_peak_mb),
                        "wall_vs_one_worker": round(run.wall_s / first["compaction"], 3),
                    },
                )
            )
        shutil.rmtree(lake, ignore_errors=True)
    return results
