"""The lake at a region's size, measured through the real `lake` CLI and real HTTP.

A synthetic region of NDBC buoys (bench/region_sources.py: a year of 10-minute stdmet
history plus a 45-day realtime2 file per station, in NDBC's own formats) is served on
127.0.0.1, and the lake harvests it as a user would run it:

a. backfill_year: `lake harvest --stream region-stdmet --since 2025-01-01` into an empty lake
b. realtime_cycle: every realtime2 file gains one record; `lake harvest --stream ...`
c. unchanged_cycle: the same with nothing changed (conditional requests, 304s)
d. poll_into_region_vs_empty: one station's poll, in-process, into the region lake vs a lake
   holding only that station (the same request, the same new record); then the same into
   a lake of more than 169 M values (bench/region_big.py: two years, BENCH_REGION_BIG_YEARS)
g. freshness: a new record in every file → visible through `Lake.sql`
e. reads against per-station NetCDF files read with xarray: station_month,
   latest_per_station, regional_daily_mean
f. compaction: `lake compact`, wall time and the child's peak RSS
h. scale_out: the backfill and the compaction again on Dask clusters of 1, 2 and 4 worker
   processes (bench/region_scale.py), each beside the in-process backfill

BENCH_REGION_STATIONS (default 150) and BENCH_REGION_DAYS (history days, default 365: the
year 2025; fewer: the last days of 2025) size the region. Work files: bench/work/region/.
BENCH_REGION_REUSE_LAKE=1 reruns the steps after the backfill on the lake a previous run
built; BENCH_REGION_SKIP names steps to leave out (their figures are carried over, marked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from bench.common import RESULTS, WORK, Result, timed
from bench.region_big import build_big_lake
from bench.region_scale import scale_out
from bench.region_sources import (
    CF_NAMES,
    STREAM_ID,
    Counts,
    Region,
    RegionFiles,
    serve,
    write_registry,
)
from lake.compaction import compact
from lake.reader import Lake

BASE = WORK / "region"
LAKE_CMD = Path(sys.executable).parent / "lake"
SINCE = "2025-01-01"
SST = "sea_surface_temperature"
GOALS_S = {"backfill_year": 600.0, "realtime_cycle": 60.0, "unchanged_cycle": 15.0}
FRESHNESS_GOAL_S = 60.0
COMPACT_RSS_GOAL_MB = 2048.0
SUMMARY = re.compile(r"(\d+) streams, (\d+) requests, (\d+) failed, ([\d,]+) new values")


def _region() -> Region:
    return Region(
        stations=int(os.environ.get("BENCH_REGION_STATIONS", 150)),
        days=int(os.environ.get("BENCH_REGION_DAYS", 365)),
    )


def _say(step: str, text: str) -> None:
    print(f"  [{step}] {text}", flush=True)


@dataclass(frozen=True)
class Paths:
    base: Path = BASE

    @property
    def sources(self) -> Path:
        return self.base / "sources"

    @property
    def lake(self) -> Path:
        return self.base / "lake"

    @property
    def empty_lake(self) -> Path:
        return self.base / "single-station-lake"

    @property
    def netcdf(self) -> Path:
        return self.base / "netcdf"

    @property
    def registry(self) -> Path:
        return self.base / "registry.yaml"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def table(self, name: str) -> Path:
        return self.lake / "tables" / name


# -- the CLI in a child process ---------------------------------------------------------


@dataclass
class CliRun:
    wall_s: float
    peak_rss_mb: float
    code: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, int]:
        """The harvest's own last line: streams, requests, failed, new values."""
        found = SUMMARY.search(self.stderr)
        if not found:
            return {}
        keys = ("streams", "requests", "failed", "new_values")
        return {k: int(v.replace(",", "")) for k, v in zip(keys, found.groups(), strict=True)}

    def problems(self, limit: int = 12) -> list[str]:
        """Error and warning lines the child printed (for the report)."""
        lines = [ln.strip() for ln in self.stderr.splitlines()]
        bad = [ln for ln in lines if re.search(r"error|warning|failed|Traceback", ln, re.I)]
        return [ln for ln in bad if not SUMMARY.search(ln)][:limit]


def cli(paths: Paths, args: list[str], log_name: str) -> CliRun:
    """Run `lake <args>` as a user would (LAKE_ROOT, LAKE_REGISTRY); wall time and the
    child's own peak RSS (wait4 gives that child's rusage, not the maximum of all children)."""
    env = {
        **os.environ,
        "LAKE_ROOT": str(paths.lake),
        "LAKE_REGISTRY": str(paths.registry),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    paths.logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = paths.logs / f"{log_name}.out", paths.logs / f"{log_name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(LAKE_CMD), *args], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    return CliRun(
        wall_s=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,
        code=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def harvest(paths: Paths, log_name: str, *extra: str) -> CliRun:
    run = cli(paths, ["harvest", "--stream", STREAM_ID, *extra], log_name)
    if run.code != 0:
        _say(log_name, f"lake harvest exited {run.code}; see {paths.logs / log_name}.err")
        for line in run.problems():
            _say(log_name, f"  {line}")
    return run


def count_values(paths: Paths) -> int:
    """Values in the lake, asked through the CLI as a user would."""
    run = cli(
        paths, ["sql", "select count(*) as n from observations_all", "--format", "csv"], "count"
    )
    lines = run.stdout.strip().splitlines()
    if run.code != 0 or len(lines) < 2:
        _say("count", f"lake sql failed ({run.code}): {run.stderr.strip()[-300:]}")
        return -1
    return int(lines[-1])


# -- the tables on disk -----------------------------------------------------------------


@dataclass(frozen=True)
class TableState:
    parquet_files: int  # on disk, live or replaced (until vacuum)
    active_files: int  # in the current Delta version
    log_entries: int  # _delta_log/*.json: one per committed version
    version: int

    def minus(self, before: TableState) -> dict[str, int]:
        return {
            "parquet_files_added": self.parquet_files - before.parquet_files,
            "active_files_added": self.active_files - before.active_files,
            "versions_added": self.log_entries - before.log_entries,
        }


def table_state(path: Path) -> TableState:
    from deltalake import DeltaTable

    logs = sorted((path / "_delta_log").glob("*.json"))
    if not logs:
        return TableState(0, 0, 0, -1)
    files = sum(1 for p in path.rglob("*.parquet") if "_delta_log" not in p.parts)
    return TableState(files, len(DeltaTable(str(path)).file_uris()), len(logs), int(logs[-1].stem))


@dataclass
class Tables:
    observations: TableState
    stations: TableState
    raw_bytes: int  # the raw zone: every response body kept

    @classmethod
    def read(cls, paths: Paths) -> Tables:
        raw = sum(p.stat().st_size for p in (paths.lake / "raw").rglob("*") if p.is_file())
        return cls(
            table_state(paths.table("observations")), table_state(paths.table("stations")), raw
        )


# -- steps a-c: the CLI harvests ---------------------------------------------------------


@dataclass
class Context:
    region: Region
    paths: Paths
    files: RegionFiles
    url: str = ""
    counts: Counts = field(default_factory=Counts)
    values: int = 0


def _goal_result(
    name: str, run: CliRun, ctx: Context, before: Tables, detail: dict[str, Any]
) -> Result:
    after = Tables.read(ctx.paths)
    values = count_values(ctx.paths)
    added = values - ctx.values
    ctx.values = values
    goal = GOALS_S[name]
    detail = {
        "goal": f"<= {goal:g} s",
        "goal_met": run.wall_s <= goal,
        "exit_code": run.code,
        "harvest_summary": run.summary(),
        "http_replies": {str(k): v for k, v in sorted(ctx.counts.take().items())},
        "values_in_lake": values,
        "values_expected": ctx.files.expected_values(),
        "values_added": added,
        "child_peak_rss_mb": round(run.peak_rss_mb, 1),
        "observations": {
            **after.observations.minus(before.observations),
            "version": after.observations.version,
        },
        "stations": {**after.stations.minus(before.stations), "version": after.stations.version},
        "raw_zone_added_mb": round((after.raw_bytes - before.raw_bytes) / 2**20, 2),
        "raw_zone_mb": round(after.raw_bytes / 2**20, 1),
        **detail,
    }
    if run.code != 0:
        detail["problems"] = run.problems()
    _say(name, f"{run.wall_s:.1f} s (goal {goal:g} s), {added:,} values added, exit {run.code}")
    return Result(name, f"goal <= {goal:g} s", run.wall_s, goal, max(added, 0), detail)


def backfill_year(ctx: Context) -> Result:
    shutil.rmtree(ctx.paths.lake, ignore_errors=True)
    before = Tables.read(ctx.paths)
    ctx.counts.take()
    _say("backfill_year", f"lake harvest --stream {STREAM_ID} --since {SINCE} ...")
    run = harvest(ctx.paths, "backfill_year", "--since", SINCE)
    result = _goal_result("backfill_year", run, ctx, before, {})
    obs = Tables.read(ctx.paths).observations
    result.detail.update(
        values_per_s=round(ctx.values / run.wall_s),
        table_version=obs.version,
        parquet_files=obs.parquet_files,
        active_files=obs.active_files,
        values_match_sources=ctx.values == result.detail["values_expected"],
    )
    return result


def _backfill_file(ctx: Context) -> Path:
    return ctx.paths.base / "backfill_result.json"


def previous_backfill(ctx: Context) -> Result:
    """The backfill result of the run that built the reused lake."""
    saved = json.loads(_backfill_file(ctx).read_text())
    detail = {**saved.get("detail", {}), "carried_over_from": saved.get("git_sha", "?")}
    _say("backfill_year", f"reused lake; backfill of that run: {saved['ours_s']:.1f} s")
    return Result(
        "backfill_year", saved["baseline"], saved["ours_s"], saved["baseline_s"],
        saved["rows"], detail,
    )  # fmt: skip


def realtime_cycle(ctx: Context, name: str = "realtime_cycle") -> Result:
    before = Tables.read(ctx.paths)
    start = time.perf_counter()
    for i in range(ctx.region.stations):
        ctx.files.add_record(i)
    rewrite_s = time.perf_counter() - start
    ctx.counts.take()
    run = harvest(ctx.paths, name)
    return _goal_result(name, run, ctx, before, {"rewrite_files_s": round(rewrite_s, 3)})


def import_floor_s() -> float:
    """What any `lake harvest` pays before its first request: importing the harvest job."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import coastlake.cli, coastlake.harvest"], check=True)
    return time.perf_counter() - start


def unchanged_cycle(ctx: Context) -> Result:
    before = Tables.read(ctx.paths)
    ctx.counts.take()
    run = harvest(ctx.paths, "unchanged_cycle")
    detail = {"goal_files_versions": "0 and 0", "import_harvest_job_s": round(import_floor_s(), 2)}
    return _goal_result("unchanged_cycle", run, ctx, before, detail)


# -- step d: one station's poll, region lake vs a lake of that station only --------------


def _one_station(ctx: Context, i: int) -> Any:
    from lake.registry import load_registry

    stream = load_registry(str(ctx.paths.registry)).get(STREAM_ID)
    station = stream.source.params["stations"][i]
    return stream.model_copy(
        update={"source": stream.source.model_copy(update={"stations": [station]})}
    )


def _poll(storage: Any, stream: Any) -> tuple[float, list[str]]:
    from coastlake.harvest import HarvestOptions, harvest_stream

    start = time.perf_counter()
    records = harvest_stream(storage, stream, HarvestOptions())
    return time.perf_counter() - start, [f"{r.label}:{r.status}" for r in records]


@dataclass
class PollTimes:
    """Alternating polls of one station into a big lake and into its single-station lake."""

    big: list[float] = field(default_factory=list)
    single: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    statuses: list[list[str]] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        ours_s, base_s = float(np.median(self.big)), float(np.median(self.single))
        return {
            "goal": "big lake <= 2x the single-station lake",
            "growth": round(ours_s / base_s, 2),
            "goal_met": ours_s <= 2 * base_s,
            "big_lake_polls_s": [round(t, 3) for t in self.big],
            "single_station_polls_s": [round(t, 3) for t in self.single],
            "warm_up_polls_s": [round(t, 3) for t in self.warm],
            "statuses": self.statuses,
            "what": "in-process harvest_stream of one station (metadata + station upsert + "
            "realtime2 file with one new record) into each lake",
        }


def _single_station_lake(ctx: Context, stream: Any) -> tuple[Any, float, list[str]]:
    """The lake holding only station 1, made by its first poll (the whole 45-day file)."""
    from lake.settings import Settings
    from lake.storage import Storage
    from lake.tables import ObservationTable

    shutil.rmtree(ctx.paths.empty_lake, ignore_errors=True)
    single = Storage.from_settings(Settings(root=str(ctx.paths.empty_lake)))
    ObservationTable(single).create()
    first_s, first_status = _poll(single, stream)
    _say("poll", f"first poll into an empty lake (45 days of one station): {first_s:.2f} s")
    return single, first_s, first_status


def _compare_polls(ctx: Context, big: Any, single: Any, stream: Any, repeat: int) -> PollTimes:
    """Median-ready times of `repeat` polls into each lake, in alternating order, each after
    the source published one more record."""
    times = PollTimes()
    ctx.files.add_record(0)
    times.warm = [_poll(big, stream)[0], _poll(single, stream)[0]]  # as a running harvester is
    for rep in range(repeat):
        ctx.files.add_record(0)
        order = [(big, times.big), (single, times.single)]
        for storage, out in order if rep % 2 == 0 else order[::-1]:
            took, status = _poll(storage, stream)
            out.append(took)
            times.statuses.append(status)
    return times


def poll_into_region_vs_empty(ctx: Context, repeat: int = 5) -> Result:
    """The same request (station 1's realtime2 file with one new record) polled into the
    region lake and into a lake holding only that station; median of `repeat` polls."""
    from lake.settings import Settings
    from lake.storage import Storage

    stream = _one_station(ctx, 0)
    region = Storage.from_settings(Settings(root=str(ctx.paths.lake)))
    single, first_s, first_status = _single_station_lake(ctx, stream)
    times = _compare_polls(ctx, region, single, stream, repeat)
    ours_s, base_s = float(np.median(times.big)), float(np.median(times.single))
    _say("poll", f"region lake {ours_s:.2f} s vs single-station lake {base_s:.2f} s")
    detail = {
        **times.detail(),
        "first_poll_into_empty_lake_s": round(first_s, 3),
        "first_poll_statuses": first_status,
        "values_in_region_lake": count_values(ctx.paths),
    }
    return Result(
        "poll_into_region_vs_empty", "the same poll into a single-station lake", ours_s, base_s,
        ctx.region.stations, detail,
    )  # fmt: skip


def poll_into_big_lake(ctx: Context, repeat: int = 5) -> Result:
    """As above, into a lake of more than 169 M values (two years of the region's series,
    written straight to the table: see bench/region_big.py)."""
    from lake.settings import Settings
    from lake.storage import Storage

    years = [int(y) for y in os.environ.get("BENCH_REGION_BIG_YEARS", "2023,2024").split(",")]
    path = ctx.paths.base / "big-lake"
    built = build_big_lake(path, ctx.paths.lake, STREAM_ID, years)
    how = "reused" if built["reused"] else f"built in {built['build_s']} s"
    _say("poll", f"big lake of {int(built['values']) / 1e6:,.1f} M values ({how})")
    stream = _one_station(ctx, 0)
    big = Storage.from_settings(Settings(root=str(path)))
    # The big lake is kept between runs, and every run's polls leave small files in its
    # newest month: compacted first, as the nightly upkeep would, so a run measures a poll
    # into the lake, not into the leftovers of earlier runs.
    compacted = compact(big)
    _say("poll", f"big lake: {compacted} partitions of earlier runs' polls compacted")
    single, _, _ = _single_station_lake(ctx, stream)
    times = _compare_polls(ctx, big, single, stream, repeat)
    ours_s, base_s = float(np.median(times.big)), float(np.median(times.single))
    _say("poll", f"big lake {ours_s:.2f} s vs single-station lake {base_s:.2f} s")
    detail = {**times.detail(), "big_lake": built, "partitions_compacted_first": compacted}
    return Result(
        "poll_into_169M_lake_vs_empty", "the same poll into a single-station lake", ours_s,
        base_s, int(built["values"]), detail,
    )  # fmt: skip


# -- step g: freshness ---------------------------------------------------------------------


def freshness(ctx: Context) -> Result:
    """A new record in every realtime2 file at t0 → a harvest → a new Lake sees them all."""
    t0 = time.perf_counter()
    newest = [ctx.files.add_record(i) for i in range(ctx.region.stations)]
    rewrite_s = time.perf_counter() - t0
    run = harvest(ctx.paths, "freshness")
    cycle_end = time.perf_counter()
    lk = Lake.open(str(ctx.paths.lake))
    expected = pa.table(
        {
            "station_id": [f"urn:ioos:station:wmo:{s}" for s in ctx.region.station_ids()],
            "time": pa.array(np.array(newest, dtype="datetime64[us]"), pa.timestamp("us")),
        }
    )
    lk.connection().register("fresh_expected", expected)
    seen = (
        lk.sql(
            "SELECT count(*) AS n FROM fresh_expected e WHERE EXISTS (SELECT 1 FROM "
            "observations_all o WHERE o.dataset_id = ? AND o.station_id = e.station_id "
            "AND o.time = e.time)",
            [STREAM_ID],
        )
        .column("n")[0]
        .as_py()
    )
    query_s = time.perf_counter() - cycle_end
    lk.close()
    total = time.perf_counter() - t0
    _say("freshness", f"{total:.1f} s end to end; {seen}/{ctx.region.stations} new records seen")
    detail = {
        "goal": f"<= {FRESHNESS_GOAL_S:g} s",
        "goal_met": total <= FRESHNESS_GOAL_S and seen == ctx.region.stations,
        "rewrite_files_s": round(rewrite_s, 3),
        "harvest_cycle_s": round(run.wall_s, 3),
        "open_and_query_s": round(query_s, 3),
        "stations_with_new_record_visible": seen,
        "exit_code": run.code,
        "harvest_summary": run.summary(),
    }
    ctx.values = count_values(ctx.paths)
    return Result(
        "freshness", f"goal <= {FRESHNESS_GOAL_S:g} s", total, FRESHNESS_GOAL_S, seen, detail
    )


# -- step e: reads against per-station NetCDF ----------------------------------------------


def write_netcdf(ctx: Context) -> float:
    """One NetCDF per station, every variable, from the generated values (history and every
    realtime record so far): what the lake holds, as a user would keep it without one."""
    shutil.rmtree(ctx.paths.netcdf, ignore_errors=True)
    ctx.paths.netcdf.mkdir(parents=True)
    start = time.perf_counter()
    for i, sid in enumerate(ctx.region.station_ids()):
        times, values = ctx.files.all_values(i)
        lon, lat = ctx.region.position(i)
        ds = xr.Dataset(
            {CF_NAMES[k][0]: ("time", v, {"units": CF_NAMES[k][1]}) for k, v in values.items()},
            coords={"time": times.astype("datetime64[ns]"), "lon": lon, "lat": lat},
            attrs={"featureType": "timeSeries", "station_id": sid},
        )
        encoding = {name: {"zlib": True, "complevel": 1} for name in ds.data_vars}
        ds.to_netcdf(ctx.paths.netcdf / f"{sid}.nc", encoding=encoding)
    return time.perf_counter() - start


def _month(region: Region) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A month of history: June 2025, or the start of a shorter history."""
    first = pd.Timestamp(region.history_times()[0])
    start = max(first, pd.Timestamp(f"{region.year}-06-01"))
    end = min(start + pd.Timedelta(days=30), pd.Timestamp(f"{region.year + 1}-01-01"))
    return start, end - pd.Timedelta(minutes=1)


def station_month(ctx: Context, lk: Lake) -> list[Result]:
    """One station-month of every variable: Lake.series, repeated (served from the read
    cache) and with the cache off (files read and pivoted every time), against xarray
    opening the station's NetCDF file, in the same run."""
    from lake.settings import Settings

    sid = ctx.region.station_ids()[0]
    urn = f"urn:ioos:station:wmo:{sid}"
    start, end = _month(ctx.region)
    path = ctx.paths.netcdf / f"{sid}.nc"
    uncached = Lake.open(str(ctx.paths.lake), Settings(read_cache_mb=0))

    def netcdf() -> xr.Dataset:
        with xr.open_dataset(path) as ds:
            return ds.sel(time=slice(start, end)).load()

    first_s, _ = timed(lambda: uncached.series(STREAM_ID, urn, start, end), repeat=1)
    lk.series(STREAM_ID, urn, start, end)  # warm, as a notebook's second call
    cached_s, got = timed(lambda: lk.series(STREAM_ID, urn, start, end), repeat=21)
    uncached_s, _ = timed(lambda: uncached.series(STREAM_ID, urn, start, end), repeat=21)
    base_s, ref = timed(netcdf, repeat=21)
    uncached.close()
    got_values = sum(
        int(got[v].notnull().sum()) for v in got.data_vars if not v.endswith("_qc_agg")
    )
    ref_values = sum(int(ref[v].notnull().sum()) for v in ref.data_vars)
    _say(
        "station_month",
        f"Lake.series {cached_s * 1000:.1f} ms repeated, {uncached_s * 1000:.1f} ms uncached "
        f"vs xarray {base_s * 1000:.1f} ms",
    )
    detail = {
        "station": urn,
        "window": [str(start), str(end)],
        "lake_values": got_values,
        "netcdf_values": ref_values,
        "first_read_in_a_new_lake_object_s": round(first_s, 4),
        "median_of": 21,
        "note": "Lake.series masks values that failed QC (NaN); the NetCDF holds them all",
    }
    cached_detail = {
        **detail,
        "how": "the same call again: served from the read cache (LAKE_READ_CACHE_MB), whose "
        "key names the table files read, so it is never stale",
    }
    uncached_detail = {
        **detail,
        "how": "LAKE_READ_CACHE_MB=0: the pruned files read by DuckDB and pivoted every call",
    }
    return [
        Result(
            "station_month (Lake.series, repeated)", "per-station NetCDF via xarray",
            cached_s, base_s, got_values, cached_detail,
        ),
        Result(
            "station_month (Lake.series, read cache off)", "per-station NetCDF via xarray",
            uncached_s, base_s, got_values, uncached_detail,
        ),
    ]  # fmt: skip


def _latest_query(lk: Lake) -> tuple[str, str]:
    """`latest` when the view exists, else the same answer from observations_all."""
    import duckdb

    try:
        lk.sql("SELECT * FROM latest LIMIT 0")
        return "view latest", "SELECT * FROM latest"
    except duckdb.Error:
        return "fallback group-by over observations_all (no view latest yet)", (
            "SELECT dataset_id, station_id, variable, z, arg_max(value, time) AS value, "
            "max(time) AS time FROM observations_all GROUP BY ALL"
        )


def latest_per_station(ctx: Context, lk: Lake) -> Result:
    which, query = _latest_query(lk)
    paths = [ctx.paths.netcdf / f"{sid}.nc" for sid in ctx.region.station_ids()]

    def netcdf() -> list[tuple[str, str, Any, float]]:
        rows = []
        for path in paths:
            with xr.open_dataset(path) as ds:
                times = ds["time"].values
                for name in ds.data_vars:
                    values = ds[name].values
                    valid = np.flatnonzero(~np.isnan(values))
                    if valid.size:
                        rows.append(
                            (path.stem, str(name), times[valid[-1]], float(values[valid[-1]]))
                        )
        return rows

    lk.sql(query)  # warm
    ours_s, got = timed(lambda: lk.sql(query), repeat=3)
    base_s, ref = timed(netcdf, repeat=3)
    _say("latest_per_station", f"{which}: {ours_s:.3f} s vs NetCDF {base_s:.3f} s")
    detail = {"ran": which, "query": query, "lake_rows": got.num_rows, "netcdf_rows": len(ref)}
    return Result(
        "latest_per_station", "open every NetCDF, last valid value per variable", ours_s,
        base_s, got.num_rows, detail,
    )  # fmt: skip


DAILY_SQL = (
    "SELECT station_id, date_trunc('day', time) AS day, avg(value) AS mean FROM observations "
    "WHERE dataset_id = ? AND variable = ? GROUP BY ALL ORDER BY ALL"
)


def regional_daily_mean(ctx: Context, lk: Lake) -> Result:
    """Daily mean SST per station over the whole history, every station."""
    sids = ctx.region.station_ids()

    def ours() -> pa.Table:
        return lk.sql(DAILY_SQL, [STREAM_ID, SST])

    def netcdf() -> xr.DataArray:
        means = []
        for sid in sids:
            with xr.open_dataset(ctx.paths.netcdf / f"{sid}.nc") as ds:
                means.append(ds[SST].resample(time="1D").mean().load())
        return xr.concat(means, dim=pd.Index(sids, name="station"))

    ours_s, got = timed(ours, repeat=3)
    base_s, ref = timed(netcdf, repeat=1)
    lake = got.to_pandas()
    lake["station"] = lake["station_id"].str.rsplit(":", n=1).str[-1]
    frame = ref.to_series().dropna().rename("nc").reset_index()
    both = lake.merge(frame, left_on=["station", "day"], right_on=["station", "time"])
    diff = float((both["mean"] - both["nc"]).abs().max()) if len(both) else float("nan")
    _say("regional_daily_mean", f"SQL {ours_s:.3f} s vs xarray {base_s:.3f} s")
    detail = {
        "variable": SST,
        "station_days_lake": got.num_rows,
        "station_days_netcdf": len(frame),
        "station_days_matched": len(both),
        "max_abs_diff_degC": round(diff, 6),
        "note": "the lake's observations view masks values that failed QC",
    }
    return Result(
        "regional_daily_mean (SQL date_trunc)", "xarray resample per station file + concat",
        ours_s, base_s, got.num_rows, detail,
    )  # fmt: skip


# -- step f: compaction --------------------------------------------------------------------


def _lake_reads_s(ctx: Context) -> dict[str, float]:
    """The three lake reads once more (warm, median of 3): how compaction changed them.
    The read cache is off: it would answer from memory both times."""
    from lake.settings import Settings

    lk = Lake.open(str(ctx.paths.lake), Settings(read_cache_mb=0))
    urn = f"urn:ioos:station:wmo:{ctx.region.station_ids()[0]}"
    start, end = _month(ctx.region)
    _, latest = _latest_query(lk)
    reads = {
        "station_month": lambda: lk.series(STREAM_ID, urn, start, end),
        "latest_per_station": lambda: lk.sql(latest),
        "regional_daily_mean": lambda: lk.sql(DAILY_SQL, [STREAM_ID, SST]),
    }
    out = {}
    for name, fn in reads.items():
        fn()
        out[name] = round(timed(fn, repeat=3)[0], 4)
    lk.close()
    return out


def compaction(ctx: Context, reads_before: dict[str, float]) -> Result:
    before = Tables.read(ctx.paths)
    _say("compaction", "lake compact ...")
    run = cli(ctx.paths, ["compact"], "compaction")
    after = Tables.read(ctx.paths)
    found = re.search(r"compacted (\d+) partitions", run.stderr)
    values = count_values(ctx.paths)
    _say(
        "compaction",
        f"{run.wall_s:.1f} s, child peak RSS {run.peak_rss_mb:.0f} MB, exit {run.code}",
    )
    detail = {
        "goal": f"child peak RSS <= {COMPACT_RSS_GOAL_MB:g} MB",
        "goal_met": run.code == 0 and run.peak_rss_mb <= COMPACT_RSS_GOAL_MB,
        "child_peak_rss_mb": round(run.peak_rss_mb, 1),
        "exit_code": run.code,
        "partitions_compacted": int(found.group(1)) if found else None,
        "active_files_before": before.observations.active_files,
        "active_files_after": after.observations.active_files,
        "versions_added": after.observations.log_entries - before.observations.log_entries,
        "values_before": ctx.values,
        "values_after": values,
        "lake_reads_before_s": reads_before,
        "lake_reads_after_s": _lake_reads_s(ctx),
    }
    if run.code != 0:
        detail["problems"] = run.problems()
    return Result("compaction", "-", run.wall_s, None, values, detail)


# -- the run ---------------------------------------------------------------------------------


def prepare(region: Region, paths: Paths) -> RegionFiles:
    """The sources: cached history files, fresh realtime2 files ending an hour ago."""
    paths.base.mkdir(parents=True, exist_ok=True)
    hour_ago = pd.Timestamp.now("UTC").tz_localize(None).floor("10min") - pd.Timedelta("1h")
    files = RegionFiles(region, paths.sources, realtime_end=np.datetime64(hour_ago, "m"))
    start = time.perf_counter()
    written = files.write_history()
    files.start_realtime()
    files.write_active_stations()
    size = sum(p.stat().st_size for p in paths.sources.rglob("*.txt")) / 2**20
    _say(
        "sources",
        f"{region.stations} stations: {written} history files written "
        f"({'cached' if not written else 'new'}), realtime2 files in "
        f"{time.perf_counter() - start:.1f} s; {size:,.0f} MB of NDBC text",
    )
    return files


def reads(ctx: Context) -> list[Result]:
    nc_s = write_netcdf(ctx)
    _say("reads", f"{ctx.region.stations} NetCDF files written in {nc_s:.1f} s")
    lk = Lake.open(str(ctx.paths.lake))
    try:
        return [*station_month(ctx, lk), latest_per_station(ctx, lk), regional_daily_mean(ctx, lk)]
    finally:
        lk.close()


#: Steps a rerun leaves out (BENCH_REGION_SKIP=compaction,reads): their figures are carried
#: over from the committed results file, marked with the run they came from.
SKIP = {step for step in os.environ.get("BENCH_REGION_SKIP", "").split(",") if step}
#: The results a step produces, by name prefix.
STEP_RESULTS = {"reads": ("station_month", "latest_per_station", "regional_daily_mean")}


def carried_over(name: str) -> list[Result]:
    """A skipped step's results from the last committed run."""
    path = RESULTS / "bench_region.json"
    if not path.exists():
        return []
    previous = json.loads(path.read_text())
    prefixes = STEP_RESULTS.get(name, (name,))
    out = []
    for saved in previous["results"]:
        if saved["name"].startswith(prefixes):
            detail = {"carried_over_from": saved.get("git_sha", "?"), **saved.get("detail", {})}
            out.append(
                Result(
                    saved["name"],
                    saved["baseline"],
                    saved["ours_s"],
                    saved["baseline_s"],
                    saved["rows"],
                    detail,
                )
            )
    _say(name, f"skipped (BENCH_REGION_SKIP); {len(out)} results carried over")
    return out


def guarded(name: str, step: Callable[[], Result | list[Result]]) -> list[Result]:
    """Run one step; a step that raises is reported (the error kept in the result) and the
    others still run, so one broken step does not cost a long run's other numbers."""
    if name in SKIP:
        return carried_over(name)
    load = round(os.getloadavg()[0], 2)
    try:
        out = step()
    except Exception as exc:
        _say(name, f"FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=6)
        error = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(-6),
            "load_avg_1m_at_start": load,
        }
        return [Result(name, "step failed", 0.0, None, 0, error)]
    out = out if isinstance(out, list) else [out]
    for result in out:
        result.detail["load_avg_1m_at_start"] = load  # 2-core machines: read times with it
    return out


def run() -> list[Result]:
    region, paths = _region(), Paths()
    print(
        f"  region: {region.stations} stations, {region.days} days of 2025 history + 45 days "
        f"realtime2, 10-minute records; work in {paths.base}",
        flush=True,
    )
    files = prepare(region, paths)
    ctx = Context(region, paths, files)
    results: list[Result] = []
    with serve(paths.sources) as (url, counts):
        ctx.url, ctx.counts = url, counts
        write_registry(paths.registry, region, url)
        _say("sources", f"serving at {url}")
        if os.environ.get("BENCH_REGION_REUSE_LAKE") and ctx.paths.lake.exists():
            # A rerun of the later steps on the lake a previous run backfilled: its
            # backfill figure is carried over from that run, and says so.
            results.append(previous_backfill(ctx))
        else:
            results += guarded("backfill_year", lambda: backfill_year(ctx))
            saved = next((r for r in results if r.name == "backfill_year"), None)
            if saved is not None:
                _backfill_file(ctx).write_text(json.dumps(asdict(saved), default=str))
        results += guarded("realtime_cycle", lambda: realtime_cycle(ctx))
        results += guarded("unchanged_cycle", lambda: unchanged_cycle(ctx))
        results += guarded("poll_into_region_vs_empty", lambda: poll_into_region_vs_empty(ctx))
        results += guarded("poll_into_169M_lake_vs_empty", lambda: poll_into_big_lake(ctx))
        results += guarded("freshness", lambda: freshness(ctx))
    results += guarded("reads", lambda: reads(ctx))
    results += guarded("compaction", lambda: compaction(ctx, _lake_reads_s(ctx)))
    with serve(paths.sources) as (url, counts):
        # The same sources again (a new port), for the backfills on Dask clusters.
        write_registry(paths.registry, region, url)
        in_process = next((r.ours_s for r in results if r.name == "backfill_year"), None)
        results += guarded(
            "scale_out",
            lambda: scale_out(LAKE_CMD, paths.base, paths.registry, STREAM_ID, SINCE, in_process),
        )
    return results
