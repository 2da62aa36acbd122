"""What every benchmark writes: one JSON per benchmark module under bench/results/.

Each entry: {"name", "baseline", "ours_s", "baseline_s", "ratio", "rows", "peak_rss_mb",
"git_sha"} plus free-form detail; ratio = baseline_s / ours_s (above 1: we are faster).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / "work"


@dataclass
class Result:
    name: str
    baseline: str
    ours_s: float
    baseline_s: float | None
    rows: int
    detail: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    peak_rss_mb: float = 0.0
    git_sha: str = ""

    def __post_init__(self) -> None:
        if self.baseline_s is not None and self.ours_s > 0:
            self.ratio = round(self.baseline_s / self.ours_s, 3)
        self.peak_rss_mb = round(peak_rss_mb(), 1)
        self.git_sha = git_sha()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time of `repeat` runs (seconds) and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_results(module: str, results: list[Result]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{module}.json"
    doc = {
        "benchmark": module,
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "machine": machine(),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path
