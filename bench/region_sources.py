"""A synthetic NDBC region for benchmarks: N buoys' stdmet files in NDBC's own formats, served
by a local HTTP server at the URL paths the NDBC harvester asks for.

Per station: the yearly history file (`data/historical/stdmet/<id>h2025.txt`, oldest record
first, missing values as 99/999/9999) and the realtime2 file (`data/realtime2/<ID>.txt`, the
last 45 days, newest first, missing values as `MM`). Values follow seasonal, daily and
synoptic (weather) cycles with noise, sensor outages, station outages and dropped records;
waves are hourly, VIS and TIDE are reported by a few stations only, as on real buoys.

Lines are built as a byte matrix with numpy (digit by digit, one column per character), so a
station-year of 10-minute records takes milliseconds; history files are cached on disk.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import yaml

STEP = np.timedelta64(10, "m")
REALTIME_DAYS = 45
STREAM_ID = "region-stdmet"
FORMAT_VERSION = 1

#: Header lines copied from recorded NDBC files (registry/data/www.ndbc.noaa.gov/...):
#: realtime2/44013.txt and historical/stdmet/tplm2h2021.txt.
REALTIME_HEADER = (
    "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS PTDY  TIDE"
    "\n"
    "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  nmi  hPa    ft"
    "\n"
)
HISTORY_HEADER = (
    "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE\n"
    "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC   mi    ft\n"
)


@dataclass(frozen=True)
class Column:
    """One data column: field width, decimals in each file, the history file's missing code."""

    width: int
    realtime_decimals: int
    history_decimals: int
    missing_code: float | None  # None: the column is in realtime2 files only
    signed: bool = False  # '+' in front of positive values (PTDY)


COLUMNS: dict[str, Column] = {
    "WDIR": Column(3, 0, 0, 999.0),
    "WSPD": Column(4, 1, 1, 99.0),
    "GST": Column(4, 1, 1, 99.0),
    "WVHT": Column(5, 1, 2, 99.0),
    "DPD": Column(5, 0, 2, 99.0),
    "APD": Column(5, 1, 2, 99.0),
    "MWD": Column(3, 0, 0, 999.0),
    "PRES": Column(6, 1, 1, 9999.0),
    "ATMP": Column(5, 1, 1, 999.0),
    "WTMP": Column(5, 1, 1, 999.0),
    "DEWP": Column(5, 1, 1, 999.0),
    "VIS": Column(4, 1, 1, 99.0),
    "PTDY": Column(4, 1, 1, None, signed=True),
    "TIDE": Column(5, 1, 2, 99.0),
}
HISTORY_COLUMNS = [c for c, spec in COLUMNS.items() if spec.missing_code is not None]
WAVES = ("WVHT", "DPD", "APD", "MWD")

#: What the lake calls each column (CF standard name) and the units the files give.
CF_NAMES: dict[str, tuple[str, str]] = {
    "WDIR": ("wind_from_direction", "degree"),
    "WSPD": ("wind_speed", "m s-1"),
    "GST": ("wind_speed_of_gust", "m s-1"),
    "WVHT": ("sea_surface_wave_significant_height", "m"),
    "DPD": ("sea_surface_wave_period_at_variance_spectral_density_maximum", "s"),
    "APD": ("sea_surface_wave_mean_period", "s"),
    "MWD": ("sea_surface_wave_from_direction_at_variance_spectral_density_maximum", "degree"),
    "PRES": ("air_pressure_at_mean_sea_level", "hPa"),
    "ATMP": ("air_temperature", "degC"),
    "WTMP": ("sea_surface_temperature", "degC"),
    "DEWP": ("dew_point_temperature", "degC"),
    "VIS": ("visibility_in_air", "nmi"),
    "PTDY": ("tendency_of_air_pressure", "hPa"),
    "TIDE": ("water_surface_height_above_reference_datum", "ft"),
}


@dataclass(frozen=True)
class Region:
    """N stations in the Gulf of Maine / Mid-Atlantic box, `days` of 2025 history each."""

    stations: int = 150
    days: int = 365
    year: int = 2025
    seed: int = 2025

    def station_ids(self) -> list[str]:
        return [f"r{i + 1:04d}" for i in range(self.stations)]

    def position(self, i: int) -> tuple[float, float]:
        rng = np.random.default_rng(self.seed + 50_000 + i)
        return round(float(rng.uniform(-75.5, -66.5)), 3), round(float(rng.uniform(36.5, 44.5)), 3)

    def history_times(self) -> np.ndarray:
        """10-minute times of the history file: the whole year, or its last `days` days."""
        end = np.datetime64(f"{self.year + 1}-01-01T00:00", "m")
        start = max(
            np.datetime64(f"{self.year}-01-01T00:00", "m"), end - np.timedelta64(self.days, "D")
        )
        return np.arange(start, end, STEP)


# -- values ------------------------------------------------------------------------------


def _cycles(
    rng: np.random.Generator, minutes: np.ndarray, periods_d: tuple[float, float]
) -> np.ndarray:
    """A smooth, deterministic 'weather' signal of unit spread: six random sinusoids."""
    days = minutes / 1440.0
    periods = np.exp(rng.uniform(np.log(periods_d[0]), np.log(periods_d[1]), 6))
    phases = rng.uniform(0, 2 * np.pi, 6)
    amps = rng.uniform(0.5, 1.0, 6)
    signal = sum(
        a * np.sin(2 * np.pi * days / p + ph)
        for a, p, ph in zip(amps, periods, phases, strict=True)
    )
    return np.asarray(signal) / np.sqrt(np.sum(amps**2) / 2)


def _physics(
    region: Region, i: int, times: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every column's value at `times` (source units, before rounding and gaps)."""
    minutes = (times - np.datetime64("2000-01-01T00:00", "m")).astype("int64").astype("float64")
    weather = np.random.default_rng(region.seed + i)  # same cycles for history and realtime
    synoptic = _cycles(weather, minutes, (2.0, 12.0))
    synoptic_3h = _cycles(np.random.default_rng(region.seed + i), minutes - 180.0, (2.0, 12.0))
    local = _cycles(weather, minutes, (0.8, 6.0))
    day = minutes / 1440.0
    doy = day % 365.25
    season_air = -np.cos(2 * np.pi * (doy - 25) / 365.25)
    season_sea = -np.cos(2 * np.pi * (doy - 50) / 365.25)
    diurnal = np.sin(2 * np.pi * (day % 1.0 - 0.375))
    _, lat = region.position(i)
    n = len(times)

    def noise(scale: float) -> np.ndarray:
        return rng.normal(0.0, scale, n)

    pres = 1014.0 - 9.0 * synoptic + 0.6 * np.sin(4 * np.pi * day) + noise(0.15)
    wspd = np.maximum(0.2, 6.0 - 1.5 * season_air + 3.0 * synoptic + 1.2 * local + noise(0.6))
    wdir = (225.0 + 80.0 * local + 40.0 * synoptic + noise(12.0)) % 360.0
    atmp = 11.0 + 9.0 * season_air - 0.6 * (lat - 40.0) + 1.2 * diurnal + 2.5 * local + noise(0.2)
    wtmp = np.maximum(
        -1.8, 12.5 + 8.0 * season_sea - 0.7 * (lat - 40.0) + 0.2 * diurnal + 0.4 * local
    )
    dpd = np.clip(7.5 + 1.5 * local - 1.2 * season_air + noise(1.2), 3.0, 18.0)
    return {
        "WDIR": np.where(wdir < 0.5, 360.0, wdir),
        "WSPD": wspd,
        "GST": wspd * 1.25 + np.abs(noise(0.5)),
        "WVHT": np.exp(0.35 * synoptic - 0.25 * season_air + noise(0.04)),
        "DPD": dpd,
        "APD": np.clip(0.7 * dpd + 0.4 + noise(0.3), 2.5, 12.0),
        "MWD": (wdir + 15.0 + noise(25.0)) % 360.0,
        "PRES": pres,
        "ATMP": atmp,
        "WTMP": wtmp + noise(0.03),
        "DEWP": atmp - 1.5 - 2.5 * np.abs(local) - np.abs(noise(0.4)),
        "VIS": np.clip(10.5 - 6.0 * np.maximum(0.0, local - 0.8), 0.1, 11.0),
        "PTDY": -9.0 * (synoptic - synoptic_3h),
        "TIDE": 1.6 * np.sin(2 * np.pi * day / 0.5175) + 0.3 * np.sin(2 * np.pi * day / 1.035),
    }


def station_values(
    region: Region, i: int, times: np.ndarray, *, history: bool, seed: int
) -> dict[str, np.ndarray]:
    """Rounded values as the file gives them (NaN where missing): hourly waves, VIS and TIDE
    at a few stations, PTDY hourly (realtime only), sensor outages and single dropouts."""
    rng = np.random.default_rng(seed)
    values = _physics(region, i, times, rng)
    minute = (times.astype("datetime64[m]").astype("int64")) % 60
    n = len(times)
    span_days = max(n / 144.0, 1.0 / 144.0)
    out: dict[str, np.ndarray] = {}
    for name, spec in COLUMNS.items():
        if history and spec.missing_code is None:
            continue
        decimals = spec.history_decimals if history else spec.realtime_decimals
        v = np.round(values[name], decimals)
        gaps = rng.random(n) < 0.003
        for _ in range(rng.poisson(1.5 * span_days / 365.0)):  # sensor outages of ~2 days
            begin = int(rng.integers(0, n))
            gaps[begin : begin + int(rng.exponential(2 * 144))] = True
        if name in WAVES:
            gaps |= minute != 40
        if name == "DPD":
            gaps |= rng.random(n) < 0.2
        if name == "PTDY":
            gaps |= minute != 0
        if (name == "VIS" and i % 4) or (name == "TIDE" and i % 6):
            gaps[:] = True
        v[gaps] = np.nan
        out[name] = v
    return out


def kept_records(region: Region, i: int, times: np.ndarray, seed: int) -> np.ndarray:
    """Which records the station sent: station outages (~1.5 days, about one a year) and
    single dropped records take rows out of the file altogether."""
    rng = np.random.default_rng(seed + 7)
    n = len(times)
    keep = rng.random(n) >= 0.003
    for _ in range(rng.poisson(1.0 * n / 144.0 / 365.0)):
        begin = int(rng.integers(0, n))
        keep[begin : begin + int(rng.exponential(1.5 * 144))] = False
    return keep


# -- NDBC text ---------------------------------------------------------------------------


def _digits(
    values: np.ndarray, width: int, decimals: int, *, zero_pad: bool = False, plus: bool = False
) -> np.ndarray:
    """Right-aligned fixed-point text of `values` as a (rows, width) byte matrix; NaN → MM."""
    n = len(values)
    out = np.full((n, width), ord(" "), dtype=np.uint8)
    valid = ~np.isnan(values)
    safe = np.where(valid, values, 0.0)
    rest = np.rint(np.abs(safe) * 10**decimals).astype(np.int64)
    negative = valid & (safe < 0) & (rest > 0)
    col = width - 1
    for _ in range(decimals):
        out[:, col] = 48 + rest % 10
        rest //= 10
        col -= 1
    length = np.full(n, decimals + (1 if decimals else 0))
    if decimals:
        out[:, col] = ord(".")
        col -= 1
    first = col
    while col >= 0:
        show = np.full(n, zero_pad or col == first) | (rest > 0)
        out[show, col] = 48 + rest[show] % 10
        length += show
        rest //= 10
        col -= 1
    sign_col = width - 1 - length
    for mask, char in ((negative, "-"), (valid & ~negative if plus else np.zeros(n, bool), "+")):
        rows = np.flatnonzero(mask & (sign_col >= 0))
        out[rows, sign_col[rows]] = ord(char)
    out[~valid] = ord(" ")
    out[~valid, width - 2 :] = (ord("M"), ord("M"))
    return out


def ndbc_text(times: np.ndarray, values: dict[str, np.ndarray], *, history: bool) -> bytes:
    """An NDBC stdmet file: header lines, then one fixed-width line per time, in the order
    given (history: oldest first; realtime2: pass newest first)."""
    stamp = pd.DatetimeIndex(times)
    fields = [
        _digits(stamp.year.to_numpy().astype(float), 4, 0),
        *(
            _digits(part.to_numpy().astype(float), 2, 0, zero_pad=True)
            for part in (stamp.month, stamp.day, stamp.hour, stamp.minute)
        ),
    ]
    for name in HISTORY_COLUMNS if history else list(COLUMNS):
        spec = COLUMNS[name]
        v = values[name]
        decimals = spec.history_decimals if history else spec.realtime_decimals
        if history and spec.missing_code is not None:
            v = np.where(np.isnan(v), spec.missing_code, v)
        fields.append(_digits(v, spec.width, decimals, plus=spec.signed))
    n = len(times)
    space = np.full((n, 1), ord(" "), dtype=np.uint8)
    parts: list[np.ndarray] = []
    for f in fields:
        parts.extend((f, space))
    parts[-1] = np.full((n, 1), ord("\n"), dtype=np.uint8)
    header = HISTORY_HEADER if history else REALTIME_HEADER
    return header.encode() + np.hstack(parts).tobytes()


# -- the region on disk ------------------------------------------------------------------


@dataclass
class Feed:
    """One station's realtime2 records (oldest first in memory), growing by one per cycle."""

    times: np.ndarray
    values: dict[str, np.ndarray]

    def window(self, newest: np.datetime64) -> np.ndarray:
        return self.times > newest - np.timedelta64(REALTIME_DAYS, "D")


@dataclass
class RegionFiles:
    """The region's files under `root` (the server's document root) and the values in them."""

    region: Region
    root: Path
    realtime_end: np.datetime64
    feeds: list[Feed] = field(default_factory=list)

    def realtime_path(self, i: int) -> Path:
        return self.root / "data" / "realtime2" / f"{self.region.station_ids()[i].upper()}.txt"

    def history_path(self, i: int) -> Path:
        name = f"{self.region.station_ids()[i]}h{self.region.year}.txt"
        return self.root / "data" / "historical" / "stdmet" / name

    def history_values(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        times = self.region.history_times()
        keep = kept_records(self.region, i, times, self.region.seed * 1000 + i)
        times = times[keep]
        values = station_values(
            self.region, i, times, history=True, seed=self.region.seed * 1000 + i
        )
        return times, values

    def write_history(self) -> int:
        """Write the yearly history files unless the cached ones are of the same region;
        returns how many were written. The manifest keeps the count of values in them."""
        manifest = self.root / "history.json"
        wanted = {
            "stations": self.region.stations,
            "days": self.region.days,
            "year": self.region.year,
            "seed": self.region.seed,
            "format": FORMAT_VERSION,
        }
        cached = (
            manifest.exists()
            and {k: v for k, v in json.loads(manifest.read_text()).items() if k != "values"}
            == wanted
        )
        if cached and all(self.history_path(i).exists() for i in range(self.region.stations)):
            return 0
        total = 0
        for i in range(self.region.stations):
            times, values = self.history_values(i)
            total += sum(int(np.count_nonzero(~np.isnan(v))) for v in values.values())
            path = self.history_path(i)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ndbc_text(times, values, history=True))
        manifest.write_text(json.dumps({**wanted, "values": total}))
        return self.region.stations

    def expected_values(self) -> int:
        """Values the lake should hold after a backfill from the year's start: every value of
        the history files plus every realtime record generated so far."""
        manifest = json.loads((self.root / "history.json").read_text())
        realtime = sum(
            int(np.count_nonzero(~np.isnan(v))) for f in self.feeds for v in f.values.values()
        )
        return int(manifest["values"]) + realtime

    def start_realtime(self) -> None:
        """Every station's realtime2 file: the 45 days up to `realtime_end`."""
        end = self.realtime_end
        times = np.arange(end - np.timedelta64(REALTIME_DAYS, "D") + STEP, end + STEP, STEP)
        self.feeds = []
        for i in range(self.region.stations):
            seed = self.region.seed * 1000 + 500 + i
            keep = kept_records(self.region, i, times, seed)
            keep[-1] = True  # the newest record is there
            t = times[keep]
            self.feeds.append(Feed(t, station_values(self.region, i, t, history=False, seed=seed)))
            self._write_realtime(i)

    def add_record(self, i: int) -> np.datetime64:
        """One new record on top of station i's realtime2 file, 10 minutes after its newest;
        the file keeps 45 days, as NDBC's does. Returns the new record's time."""
        feed = self.feeds[i]
        new = np.array([feed.times[-1] + STEP])
        seed = int(new[0].astype("int64")) + i
        one = station_values(self.region, i, new, history=False, seed=seed)
        feed.times = np.concatenate([feed.times, new])
        feed.values = {k: np.concatenate([v, one[k]]) for k, v in feed.values.items()}
        self._write_realtime(i)
        return new[0]

    def _write_realtime(self, i: int) -> None:
        feed = self.feeds[i]
        shown = feed.window(feed.times[-1])
        times = feed.times[shown][::-1]
        values = {k: v[shown][::-1] for k, v in feed.values.items()}
        path = self.realtime_path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(ndbc_text(times, values, history=False))
        tmp.replace(path)

    def write_active_stations(self) -> None:
        """A small activestations.xml with the stations' names and positions."""
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<stations created="synthetic" count="{self.region.stations}">',
        ]
        for i, sid in enumerate(self.region.station_ids()):
            lon, lat = self.region.position(i)
            lines.append(
                f'<station id="{sid}" lat="{lat}" lon="{lon}" name="Synthetic buoy {sid.upper()}" '
                'owner="Synthetic Regional Association" pgm="IOOS Partners" type="buoy" '
                'met="y" currents="n" waterquality="n" dart="n"/>'
            )
        lines.append("</stations>")
        (self.root / "activestations.xml").write_text("\n".join(lines) + "\n")

    def all_values(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """History then every realtime record generated so far (what the lake should hold)."""
        h_times, h_values = self.history_values(i)
        feed = self.feeds[i]
        times = np.concatenate([h_times, feed.times])
        values = {
            k: np.concatenate([h_values.get(k, np.full(len(h_times), np.nan)), feed.values[k]])
            for k in COLUMNS
        }
        return times, values


def write_registry(path: Path, region: Region, url: str) -> None:
    """A registry with one regional stream over the region's stations (full QARTOD suite)."""
    stations = []
    for i, sid in enumerate(region.station_ids()):
        lon, lat = region.position(i)
        stations.append(
            {
                "id": sid,
                "name": f"Synthetic buoy {sid.upper()}",
                "lat": lat,
                "lon": lon,
                "platform": "buoy",
            }
        )
    stream: dict[str, Any] = {
        "id": STREAM_ID,
        "title": f"Synthetic region: standard meteorological data from {region.stations} buoys",
        "summary": "Benchmark stream: synthetic NDBC stdmet files served over local HTTP.",
        "provider": {"name": "Synthetic Regional Association", "url": "https://example.org"},
        "category": "regional",
        "kind": "timeseries",
        "data_stream_plan": "https://example.org/dsp/region-stdmet",
        "source": {"kind": "ndbc", "url": url, "file": "txt", "stations": stations},
        "cadence": "10min",
        "license": "CC-BY-4.0",
        "citation": "Synthetic data for the coastlake region benchmark.",
        "keywords": ["buoy", "meteorology", "waves", "benchmark"],
        "publication": "published",
        "qc": {
            "tests": {
                "gross_range": {"sea_surface_temperature": {"suspect_span": [-1.8, 30.0]}},
                "timing_gap": {"fail_span": 3},
                "location": {"bbox": [-76.0, 36.0, -66.0, 45.0]},
            }
        },
    }
    path.write_text(yaml.safe_dump({"streams": [stream]}, sort_keys=False))


# -- the HTTP server ---------------------------------------------------------------------


@dataclass
class Counts:
    """Replies the server sent, by status."""

    by_status: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int) -> None:
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def take(self) -> dict[int, int]:
        """The counts since the last call."""
        with self.lock:
            out, self.by_status = self.by_status, {}
            return out


def _handler(root: Path, counts: Counts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _file(self) -> Path | None:
            url = urlparse(self.path)
            if url.path == "/view_text_file.php":
                query = parse_qs(url.query)
                name = query.get("filename", [""])[0].removesuffix(".gz")
                folder = query.get("dir", [""])[0].strip("/")
                path = root / folder / name
            else:
                path = root / url.path.lstrip("/")
            path = path.resolve()
            return path if path.is_file() and root.resolve() in path.parents else None

        def _reply(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            counts.add(status)
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self._file()
            if path is None:
                self._reply(HTTPStatus.NOT_FOUND, b"<html><body>404 Not Found</body></html>")
                return
            stat = path.stat()
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            validators = {"ETag": etag, "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
            if _not_modified(
                self.headers.get("If-None-Match"),
                self.headers.get("If-Modified-Since"),
                etag,
                stat.st_mtime,
            ):
                self._reply(HTTPStatus.NOT_MODIFIED, headers=validators)
                return
            kind = "text/xml" if path.suffix == ".xml" else "text/plain"
            self._reply(HTTPStatus.OK, path.read_bytes(), {**validators, "Content-Type": kind})

    return Handler


def _not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, mtime: float
) -> bool:
    """RFC 9110: If-None-Match decides when sent; otherwise If-Modified-Since (1 s steps)."""
    if if_none_match is not None:
        return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*"
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= since
    return False


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, Counts]]:
    """Serve `root` on 127.0.0.1 (a free port) in a thread; yields the base URL and counts."""
    counts = Counts()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, counts))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="region-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
