"""Run benchmarks: every bench/bench_*.py module's `run() -> list[Result]`, or those named."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.common import write_results


def main(names: list[str]) -> int:
    here = Path(__file__).resolve().parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    if names:
        modules = [m for m in modules if m in names or m.removeprefix("bench_") in names]
    for name in modules:
        print(f"== {name}", flush=True)
        results = importlib.import_module(f"bench.{name}").run()
        path = write_results(name, results)
        for r in results:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            base = f"{r.baseline_s:.4f}s" if r.baseline_s is not None else "-"
            print(f"  {r.name}: ours {r.ours_s:.4f}s, {r.baseline} {base}, ratio {ratio}")
        print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
