"""Ingest throughput: parse + normalize + write of the largest real recorded files, against
a plain pandas read of the same file (what a user would otherwise start from).

`ours` does the whole harvest step (syntax test, long rows, CF names, unit conversion with
pint, UTC times, Delta merge into a fresh local lake); the baseline only reads the file into
a DataFrame, so the ratio (baseline_s / ours_s) says what the rest costs. The parse +
normalize part alone is in detail["parse_normalize_s"].
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import Result, timed
from coastlake.reading import _mapping
from ingest.base import RawResponse
from ingest.kinds import get_harvester
from ingest.normalize import normalize
from lake.registry import load_registry
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "registry" / "data"

#: (stream in the sample registry, request label, file, plain pandas read of the file)
CASES: list[tuple[str, str, Path, Callable[[Path], Any]]] = [
    (
        "nerrs-gndblwq",
        "gndblwq 2021",
        DATA / "cdmo.baruch.sc.edu/exports/gndblwq2021.csv",
        lambda p: pd.read_csv(p),
    ),
    (
        "ndbc-tplm2-wind",
        "TPLM2 2021",
        DATA / "www.ndbc.noaa.gov/data/historical/stdmet/tplm2h2021.txt",
        lambda p: pd.read_csv(p, sep=r"\s+", skiprows=[1]),
    ),
    (
        "ndbc-44013-stdmet",
        "44013",
        DATA / "www.ndbc.noaa.gov/data/realtime2/44013.txt",
        lambda p: pd.read_csv(p, sep=r"\s+", skiprows=[1], na_values=["MM"]),
    ),
    (
        "coops-9447130-water-level",
        "9447130 water_level 201501010000-201501310000",
        DATA / "api.tidesandcurrents.noaa.gov/api/prod/datagetter/"
        "9447130_water_level_metric_201501010000-201501310000.json",
        lambda p: pd.DataFrame.from_records(json.loads(p.read_bytes())["data"]),
    ),
]


def _ours(stream_id: str, label: str, path: Path) -> Callable[[], tuple[int, float]]:
    registry = load_registry(REPO / "registry" / "sample.yaml")
    stream = registry.get(stream_id)
    body = path.read_bytes()

    def run() -> tuple[int, float]:
        harvester = get_harvester(stream.source.kind)
        raw = RawResponse(stream.id, path.as_uri(), body, datetime.now(UTC), label=label)
        start = pd.Timestamp.now()
        parsed = harvester.parse(stream, raw, "bench")
        rows = normalize(
            stream, parsed.rows, _mapping(harvester, stream), raw_id=raw.raw_id, url=raw.url
        )
        parse_s = (pd.Timestamp.now() - start).total_seconds()
        root = tempfile.mkdtemp(prefix="bench-ingest-")
        try:
            ObservationTable(Storage.from_settings(Settings(root=root))).write(rows)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return rows.num_rows, parse_s

    return run


def run() -> list[Result]:
    results = []
    for stream_id, label, path, baseline in CASES:
        ours_s, (rows, parse_s) = timed(_ours(stream_id, label, path), repeat=3)
        base_s, frame = timed(functools.partial(baseline, path), repeat=5)
        results.append(
            Result(
                name=f"ingest {path.name}",
                baseline="pandas read of the same file",
                ours_s=round(ours_s, 4),
                baseline_s=round(base_s, 4),
                rows=rows,
                detail={
                    "file_bytes": path.stat().st_size,
                    "stream": stream_id,
                    "parse_normalize_s": round(parse_s, 4),
                    "ours_rows_per_s": round(rows / ours_s),
                    "parse_normalize_rows_per_s": round(rows / parse_s),
                    "pandas_cells": int(frame.size),
                    "what_ours_does": "syntax test, long rows, CF names, pint units, UTC, "
                    "Delta merge into a fresh lake",
                },
            )
        )
    return results
