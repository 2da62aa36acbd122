"""Search latency on a 100 000-item catalog: our STAC search (DuckDB over stac-geoparquet)
against what a competent user without our API would do with the same items, in the same run:

- memory: read the static JSON catalog once (following its links, plain `json`), hold the
  items as a pandas frame, and filter that frame per query;
- arrow: read the stac-geoparquet file once with pyarrow and filter it per query with
  `pyarrow.compute`, turning the first page back into STAC items as our API does.

Load times are reported apart (detail), the per-query latencies (p50/p95) are compared; every
query goes to ours and to each baseline in turn, and hit counts and first-page ids (100, by
collection then id) must agree. Re-walking the static catalog with pystac on every query is
kept only as an optional extra line (BENCH_STAC_WALK_QUERIES, default 0): nobody does that.

The catalog is synthetic but built on real station positions: the 1348 stations of NDBC's
active station table (tests/data/stac/activestations.xml, recorded from ndbc.noaa.gov),
each with one item per month over 75 months (101 100 items), split into collections by the
station's programme, each item measuring 3-6 of 20 CF standard names. Queries combine a
bbox, a time window, a CF standard name (CQL2) and sometimes free text, as the portal asks.
Size knobs: BENCH_STAC_STATIONS (first N stations, 0 = all), BENCH_STAC_MONTHS,
BENCH_STAC_QUERIES.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pystac
import stac_geoparquet.arrow

from bench.common import WORK, Result
from lake.settings import Settings
from lake.storage import Storage
from stac.build import API_DIR, COLLECTIONS_FILE, ITEMS_FILE, write_geoparquet
from stac.index import SearchIndex

log = logging.getLogger(__name__)

STATIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "stac" / "activestations.xml"
STATION_LIMIT = int(os.environ.get("BENCH_STAC_STATIONS", "0"))
MONTHS = int(os.environ.get("BENCH_STAC_MONTHS", "75"))
NAMES = [
    "sea_water_temperature",
    "sea_surface_temperature",
    "sea_water_practical_salinity",
    "air_temperature",
    "air_pressure_at_mean_sea_level",
    "wind_speed",
    "wind_from_direction",
    "wind_speed_of_gust",
    "sea_surface_wave_significant_height",
    "sea_surface_wave_mean_period",
    "sea_surface_wave_from_direction",
    "dew_point_temperature",
    "visibility_in_air",
    "sea_surface_height_above_sea_level",
    "mass_concentration_of_chlorophyll_in_sea_water",
    "mass_concentration_of_oxygen_in_sea_water",
    "sea_water_ph_reported_on_total_scale",
    "sea_water_turbidity",
    "sea_water_speed",
    "sea_water_velocity_to_direction",
]
#: Queries sent to ours and to each in-memory baseline.
QUERIES = int(os.environ.get("BENCH_STAC_QUERIES", "200"))
#: The weak extra: a pystac walk of all 101 100 files per query takes minutes on this shared
#: 2-core machine, so none by default.
WALK_QUERIES = int(os.environ.get("BENCH_STAC_WALK_QUERIES", "0"))
#: Page size of every search (ours returns the first page as items; so do the baselines).
LIMIT = 100


def stations() -> list[dict[str, Any]]:
    root = ET.parse(STATIONS).getroot()
    return [
        {**s.attrib, "lat": float(s.attrib["lat"]), "lon": float(s.attrib["lon"])}
        for s in root.iter("station")
    ][: STATION_LIMIT or None]


def _month(i: int) -> tuple[datetime, datetime]:
    y, m = divmod(i, 12)
    start = datetime(2019 + y, m + 1, 1, tzinfo=UTC)
    y2, m2 = divmod(i + 1, 12)
    return start, datetime(2019 + y2, m2 + 1, 1, tzinfo=UTC)


def make_items() -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = random.Random(7)
    items: list[dict[str, Any]] = []
    collections: dict[str, str] = {}
    for st in stations():
        cid = re.sub(r"[^a-z0-9]+", "-", st.get("pgm", "other").lower()).strip("-") or "other"
        collections[cid] = st.get("pgm", "other")
        names = sorted(rng.sample(NAMES, rng.randint(3, 6)))
        for m in range(MONTHS):
            start, end = _month(m)
            items.append(
                {
                    "type": "Feature",
                    "stac_version": "1.1.0",
                    "stac_extensions": [],
                    "id": f"{st['id']}-{start:%Y-%m}",
                    "collection": cid,
                    "geometry": {"type": "Point", "coordinates": [st["lon"], st["lat"]]},
                    "bbox": [st["lon"], st["lat"], st["lon"], st["lat"]],
                    "properties": {
                        "datetime": None,
                        "start_datetime": start.isoformat().replace("+00:00", "Z"),
                        "end_datetime": end.isoformat().replace("+00:00", "Z"),
                        "title": f"{st.get('name', st['id'])} {start:%Y-%m}",
                        "description": f"{st.get('owner', '')} {st.get('type', '')} station",
                        "keywords": [st.get("type", "station"), st.get("owner", "")],
                        "platform": st.get("type", "fixed"),
                        "cf:parameter": [{"name": n, "unit": "1"} for n in names],
                    },
                    "links": [],
                    "assets": {
                        "observations": {
                            "href": "s3://lake/tables/observations",
                            "type": "application/vnd.apache.parquet",
                            "roles": ["data"],
                        }
                    },
                }
            )
    return items, collections


def write_static(folder: Path, items: list[dict[str, Any]], collections: dict[str, str]) -> None:
    """The static catalog in pystac's self-contained layout, written directly (fast)."""
    shutil.rmtree(folder, ignore_errors=True)
    root_links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    by_collection: dict[str, list[dict[str, Any]]] = {c: [] for c in collections}
    for item in items:
        by_collection[item["collection"]].append(item)
    for cid, its in by_collection.items():
        cdir = folder / cid
        links = [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ]
        for item in its:
            idir = cdir / item["id"]
            idir.mkdir(parents=True, exist_ok=True)
            links.append(
                {
                    "rel": "item",
                    "href": f"./{item['id']}/{item['id']}.json",
                    "type": "application/geo+json",
                }
            )
            doc = dict(item)
            doc["links"] = [
                {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            ]
            (idir / f"{item['id']}.json").write_text(json.dumps(doc))
        bboxes = [i["bbox"] for i in its]
        collection = {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": cid,
            "description": collections[cid],
            "license": "other",
            "links": links,
            "extent": {
                "spatial": {
                    "bbox": [
                        [
                            min(b[0] for b in bboxes),
                            min(b[1] for b in bboxes),
                            max(b[2] for b in bboxes),
                            max(b[3] for b in bboxes),
                        ]
                    ]
                },
                "temporal": {"interval": [["2019-01-01T00:00:00Z", None]]},
            },
        }
        (cdir / "collection.json").write_text(json.dumps(collection))
        root_links.append(
            {"rel": "child", "href": f"./{cid}/collection.json", "type": "application/json"}
        )
    root = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "bench",
        "description": "synthetic",
        "links": root_links,
    }
    (folder / "catalog.json").write_text(json.dumps(root))


def queries(n: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        lon, lat = rng.uniform(-98, -65), rng.uniform(24, 46)
        m = rng.randrange(MONTHS - 3)
        start, _ = _month(m)
        _, end = _month(m + 2)
        q: dict[str, Any] = {
            "bbox": [lon - 4, lat - 3, lon + 4, lat + 3],
            "interval": (start, end),
            "name": rng.choice(NAMES),
        }
        if i % 4 == 0:
            q["q"] = rng.choice(["buoy", "fixed", "station"])
        out.append(q)
    return out


def _words(q: dict[str, Any]) -> list[str]:
    """Free-text words as our API splits them (any word may match)."""
    return [w for w in str(q.get("q") or "").lower().replace(",", " ").split() if w]


Search = Callable[[dict[str, Any]], tuple[int, list[dict[str, Any]]]]


def ours(index: SearchIndex) -> Search:
    def search(q: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        page = index.search(
            bbox=q["bbox"],
            interval=q["interval"],
            filter={"op": "=", "args": [{"property": "cf:standard_name"}, q["name"]]},
            q=q.get("q"),
            limit=LIMIT,
        )
        return page.matched, page.items

    return search


def load_static(root: Path) -> list[dict[str, Any]]:
    """Every item of the static catalog, read once by following its links with plain json."""
    items: list[dict[str, Any]] = []
    catalog = json.loads((root / "catalog.json").read_text())
    for child in (link for link in catalog["links"] if link["rel"] == "child"):
        path = root / child["href"]
        collection = json.loads(path.read_text())
        items.extend(
            json.loads((path.parent / link["href"]).read_text())
            for link in collection["links"]
            if link["rel"] == "item"
        )
    return items


class MemoryCatalog:
    """Baseline (a): the static catalog's items in a pandas frame built once, filtered per query."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        props = [i["properties"] for i in items]
        names = [tuple(p["name"] for p in pr.get("cf:parameter") or []) for pr in props]
        text = [
            " ".join(
                [
                    i["id"],
                    i.get("collection") or "",
                    pr.get("title") or "",
                    pr.get("description") or "",
                    *(pr.get("keywords") or []),
                    *n,
                ]
            ).lower()
            for i, pr, n in zip(items, props, names, strict=True)
        ]
        half = [len(i["bbox"]) // 2 for i in items]  # 2D or 3D boxes: min corner, max corner
        bbox = np.array(
            [i["bbox"][:2] + i["bbox"][h : h + 2] for i, h in zip(items, half, strict=True)],
            dtype=float,
        )
        self.frame = pd.DataFrame(
            {
                "id": [i["id"] for i in items],
                "collection": [i.get("collection") or "" for i in items],
                "xmin": bbox[:, 0],
                "ymin": bbox[:, 1],
                "xmax": bbox[:, 2],
                "ymax": bbox[:, 3],
                "t0": pd.to_datetime(
                    [p.get("start_datetime") or p.get("datetime") for p in props], utc=True
                ),
                "t1": pd.to_datetime(
                    [p.get("end_datetime") or p.get("datetime") for p in props], utc=True
                ),
                "names": names,
                "text": text,
            }
        )

    def search(self, q: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        f = self.frame
        x0, y0, x1, y1 = q["bbox"]
        start, end = (pd.Timestamp(t) for t in q["interval"])
        hit = f[
            (f.xmax >= x0)
            & (f.ymax >= y0)
            & (f.xmin <= x1)
            & (f.ymin <= y1)
            & (f.t1 >= start)
            & (f.t0 <= end)
        ]
        name = q["name"]
        hit = hit[hit.names.map(lambda names: name in names).astype(bool)]
        words = _words(q)
        if words:
            text = hit.text
            hit = hit[
                reduce(lambda a, b: a | b, (text.str.contains(w, regex=False) for w in words))
            ]
        page = hit.sort_values(["collection", "id"]).head(LIMIT)
        return len(hit), [self.items[i] for i in page.index]


class ArrowCatalog:
    """Baseline (b): the stac-geoparquet file read once with pyarrow, filtered per query with
    pyarrow.compute; the first page is turned back into STAC items, as our API does."""

    def __init__(self, path: str) -> None:
        table = pq.read_table(path)
        self.table = table
        bbox = table["bbox"].combine_chunks()
        self.box = [pc.struct_field(bbox, k) for k in ("xmin", "ymin", "xmax", "ymax")]
        self.t0 = pc.coalesce(table["start_datetime"], table["datetime"]).combine_chunks()
        self.t1 = pc.coalesce(table["end_datetime"], table["datetime"]).combine_chunks()
        params = table["cf:parameter"].combine_chunks()
        self.names = pa.ListArray.from_arrays(
            params.offsets, pc.struct_field(params.values, "name")
        )
        parts = [
            table["id"],
            table["collection"],
            pc.fill_null(table["title"], ""),
            pc.fill_null(table["description"], ""),
            pc.fill_null(pc.binary_join(table["keywords"], " "), ""),
            pc.fill_null(pc.binary_join(self.names, " "), ""),
        ]
        self.text = pc.utf8_lower(pc.binary_join_element_wise(*parts, " ")).combine_chunks()

    def search(self, q: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        x0, y0, x1, y1 = q["bbox"]
        xmin, ymin, xmax, ymax = self.box
        start, end = (pa.scalar(t, self.t0.type) for t in q["interval"])
        masks = [
            pc.greater_equal(xmax, x0),
            pc.greater_equal(ymax, y0),
            pc.less_equal(xmin, x1),
            pc.less_equal(ymin, y1),
            pc.greater_equal(self.t1, start),
            pc.less_equal(self.t0, end),
        ]
        rows = pc.indices_nonzero(reduce(pc.and_, masks))
        names = self.names.take(rows)
        named = pc.filter(
            pc.list_parent_indices(names), pc.equal(pc.list_flatten(names), q["name"])
        )
        rows = rows.take(pc.unique(named))
        words = _words(q)
        if words:
            text = self.text.take(rows)
            rows = rows.filter(reduce(pc.or_, (pc.match_substring(text, w) for w in words)))
        page = self.table.take(rows).sort_by([("collection", "ascending"), ("id", "ascending")])
        items = list(stac_geoparquet.arrow.stac_table_to_items(page.slice(0, LIMIT)))
        return len(rows), items


def walk(root: Path, q: dict[str, Any]) -> int:
    """The weak extra: pystac walks every item of the static catalog on every query."""
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    x0, y0, x1, y1 = q["bbox"]
    t0, t1 = q["interval"]
    words = _words(q)
    hits = 0
    for item in catalog.get_items(recursive=True):
        bx = item.bbox or [0, 0, 0, 0]
        if bx[2] < x0 or bx[0] > x1 or bx[3] < y0 or bx[1] > y1:
            continue
        s, e = item.common_metadata.start_datetime, item.common_metadata.end_datetime
        if s is None or e is None or e < t0 or s > t1:
            continue
        names = [p["name"] for p in item.properties.get("cf:parameter", [])]
        if q["name"] not in names:
            continue
        if words:
            text = " ".join(
                [
                    item.id,
                    item.collection_id or "",
                    item.properties.get("title", ""),
                    item.properties.get("description", ""),
                    *item.properties.get("keywords", []),
                    *names,
                ]
            ).lower()
            if not any(w in text for w in words):
                continue
        hits += 1
    return hits


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def _write(work: Path, items: list[dict[str, Any]], collections: dict[str, str]) -> Storage:
    """Both forms of the catalog: the API's geoparquet and the static JSON tree."""
    storage = Storage.from_settings(Settings(root=str(work / "lake")))
    t = time.perf_counter()
    write_geoparquet(storage, items, storage.url(API_DIR, ITEMS_FILE))
    storage.write_bytes(
        storage.url(API_DIR, COLLECTIONS_FILE),
        json.dumps(
            {
                "collections": [{"id": c, "links": []} for c in collections],
                "publication": {c: "published" for c in collections},
            }
        ).encode(),
    )
    log.info("geoparquet of %d items written in %.1f s", len(items), time.perf_counter() - t)
    t = time.perf_counter()
    marker = work / "static" / f"complete-{len(items)}-{MONTHS}m"
    if not marker.exists():  # deterministic (seeded): reuse a complete earlier write
        write_static(work / "static", items, collections)
        marker.write_text("")
        log.info("static catalog written in %.1f s", time.perf_counter() - t)
    return storage


def _timed_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return round(time.perf_counter() - start, 3), out


def _load(work: Path, storage: Storage) -> tuple[dict[str, Search], dict[str, float]]:
    """Ours and each baseline, loaded once; how long each load took."""
    index = SearchIndex(storage, refresh_s=3600)
    loads: dict[str, float] = {}
    loads["ours_index_load_s"], _ = _timed_once(lambda: index.refresh(force=True))
    loads["static_json_read_s"], static = _timed_once(lambda: load_static(work / "static"))
    loads["pandas_frame_build_s"], memory = _timed_once(lambda: MemoryCatalog(static))
    loads["arrow_load_s"], arrow = _timed_once(
        lambda: ArrowCatalog(storage.url(API_DIR, ITEMS_FILE))
    )
    return {"ours": ours(index), "memory": memory.search, "arrow": arrow.search}, loads


def measure(
    qs: list[dict[str, Any]], searches: dict[str, Search]
) -> tuple[dict[str, list[float]], list[int]]:
    """Each query to every search in turn (same conditions); answers must agree with ours."""
    for search in searches.values():  # warm-up, untimed
        search(qs[0])
    times: dict[str, list[float]] = {name: [] for name in searches}
    hits: list[int] = []
    for q in qs:
        answers = {}
        for name, search in searches.items():
            start = time.perf_counter()
            answers[name] = search(q)
            times[name].append(time.perf_counter() - start)
        n, page = answers["ours"]
        for name, (got, got_page) in answers.items():
            if got != n or [i["id"] for i in got_page] != [i["id"] for i in page]:
                raise AssertionError(f"{name} found {got} items, ours {n}, for {q}")
        hits.append(n)
    return times, hits


def measure_walk(root: Path, qs: list[dict[str, Any]], hits: list[int]) -> list[float]:
    times = []
    for q, expected in zip(qs, hits, strict=False):
        start = time.perf_counter()
        got = walk(root, q)
        times.append(time.perf_counter() - start)
        if got != expected:
            raise AssertionError(f"pystac walk found {got} items, ours {expected}, for {q}")
    return times


BASELINES = {
    "memory": "static JSON catalog read once into a pandas frame, filtered in memory per query",
    "arrow": "stac-geoparquet read once with pyarrow, filtered with pyarrow.compute per query",
    "walk": "pystac re-walk of the static JSON catalog on every query (weak, extra)",
}


def run() -> list[Result]:
    work = WORK / "stac"
    work.mkdir(parents=True, exist_ok=True)
    items, collections = make_items()
    n_items = len(items)
    storage = _write(work, items, collections)
    del items  # the baselines read the catalog back from disk, as a user would
    searches, loads = _load(work, storage)
    qs = queries(QUERIES)
    times, hits = measure(qs, searches)
    if WALK_QUERIES:
        times["walk"] = measure_walk(work / "static", qs[:WALK_QUERIES], hits)
    stats = {
        f"{name}_{p}_s": round(_pct(t, q), 6)
        for name, t in times.items()
        for p, q in (("p50", 0.5), ("p95", 0.95))
    }
    detail = {
        "items": n_items,
        "collections": len(collections),
        "synthetic": f"real NDBC station positions x {MONTHS} monthly items, random CF names",
        "queries": {name: len(t) for name, t in times.items()},
        **stats,
        **loads,
        "page_size": LIMIT,
        "mean_hits": round(statistics.mean(hits), 1),
        "results_checked": "hit counts and first-page ids equal ours on every query, per baseline",
    }
    label = f"{n_items / 1000:.0f}k" if n_items >= 1000 else str(n_items)
    return [
        Result(
            name=f"search {p} per query (bbox + time + CF name [+ text]) on {label} items",
            baseline=BASELINES[name],
            ours_s=stats[f"ours_{p}_s"],
            baseline_s=stats[f"{name}_{p}_s"],
            rows=n_items,
            detail=detail,
        )
        for name in times
        if name != "ours"
        for p in ("p50", "p95")
    ]
