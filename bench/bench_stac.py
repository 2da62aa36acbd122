"""Search latency on a 100 000-item catalog: our STAC search (DuckDB over stac-geoparquet)
against walking the static JSON catalog with pystac, which is what a user without an API
would do.

The catalog is synthetic but built on real station positions: the 1348 stations of NDBC's
active station table (tests/data/stac/activestations.xml, recorded from ndbc.noaa.gov),
each with one item per month over 75 months (101 100 items), split into collections by the
station's programme, each item measuring 3-6 of 20 CF standard names. Queries combine a
bbox, a time window, a CF standard name (CQL2) and sometimes free text, as the portal asks.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac

from bench.common import WORK, Result
from lake.settings import Settings
from lake.storage import Storage
from stac.build import API_DIR, COLLECTIONS_FILE, ITEMS_FILE, write_geoparquet
from stac.index import SearchIndex

log = logging.getLogger(__name__)

STATIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "stac" / "activestations.xml"
MONTHS = 75
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
#: Each baseline query walks all 101 100 files with pystac: minutes per query on this
#: shared 2-core machine, so by default one (BENCH_STAC_BASELINE_QUERIES for more).
BASELINE_QUERIES = int(os.environ.get("BENCH_STAC_BASELINE_QUERIES", "1"))
OURS_QUERIES = 200


def stations() -> list[dict[str, Any]]:
    root = ET.parse(STATIONS).getroot()
    return [
        {**s.attrib, "lat": float(s.attrib["lat"]), "lon": float(s.attrib["lon"])}
        for s in root.iter("station")
    ]


def _month(i: int) -> tuple[datetime, datetime]:
    y, m = divmod(i, 12)
    start = datetime(2019 + y, m + 1, 1, tzinfo=UTC)
    y2, m2 = divmod(i + 1, 12)
    return start, datetime(2019 + y2, m2 + 1, 1, tzinfo=UTC)


def make_items() -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = random.Random(7)
    items = []
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


def ours(index: SearchIndex, q: dict[str, Any]) -> int:
    page = index.search(
        bbox=q["bbox"],
        interval=q["interval"],
        filter={"op": "=", "args": [{"property": "cf:standard_name"}, q["name"]]},
        q=q.get("q"),
        limit=100,
    )
    return page.matched


def walk(root: Path, q: dict[str, Any]) -> int:
    """The baseline: pystac walks every item of the static catalog and tests it."""
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    x0, y0, x1, y1 = q["bbox"]
    t0, t1 = q["interval"]
    hits = 0
    for item in catalog.get_items(recursive=True):
        bx = item.bbox or [0, 0, 0, 0]
        if bx[2] < x0 or bx[0] > x1 or bx[3] < y0 or bx[1] > y1:
            continue
        s, e = item.common_metadata.start_datetime, item.common_metadata.end_datetime
        if s is None or e is None or e < t0 or s > t1:
            continue
        if q["name"] not in [p["name"] for p in item.properties.get("cf:parameter", [])]:
            continue
        if "q" in q:
            text = " ".join(
                [
                    item.id,
                    item.collection_id or "",
                    item.properties.get("title", ""),
                    item.properties.get("description", ""),
                    *item.properties.get("keywords", []),
                ]
            ).lower()
            if q["q"] not in text:
                continue
        hits += 1
    return hits


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def run() -> list[Result]:
    work = WORK / "stac"
    work.mkdir(parents=True, exist_ok=True)
    items, collections = make_items()
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
    build_parquet_s = time.perf_counter() - t
    t = time.perf_counter()
    marker = work / "static" / f"complete-{len(items)}"
    build_static_s: float | None = None
    if not marker.exists():  # deterministic (seeded): reuse a complete earlier write
        write_static(work / "static", items, collections)
        marker.write_text("")
        build_static_s = time.perf_counter() - t
    index = SearchIndex(storage, refresh_s=3600)
    t = time.perf_counter()
    index.refresh(force=True)
    load_s = time.perf_counter() - t

    qs = queries(OURS_QUERIES)
    ours_times, ours_hits = [], []
    for q in qs:
        start = time.perf_counter()
        ours_hits.append(ours(index, q))
        ours_times.append(time.perf_counter() - start)
    base_times = []
    for q, expected in zip(qs[:BASELINE_QUERIES], ours_hits[:BASELINE_QUERIES], strict=True):
        start = time.perf_counter()
        got = walk(work / "static", q)
        base_times.append(time.perf_counter() - start)
        if got != expected:
            raise AssertionError(f"baseline found {got} items, ours {expected}, for {q}")
    detail = {
        "items": len(items),
        "collections": len(collections),
        "synthetic": "real NDBC station positions x 75 monthly items, random CF names",
        "ours_queries": len(qs),
        "baseline_queries": len(base_times),
        "ours_p50_s": round(_pct(ours_times, 0.5), 5),
        "ours_p95_s": round(_pct(ours_times, 0.95), 5),
        "baseline_p50_s": round(_pct(base_times, 0.5), 3),
        "baseline_p95_s": round(_pct(base_times, 0.95), 3),
        "ours_index_load_s": round(load_s, 2),
        "build_geoparquet_s": round(build_parquet_s, 2),
        "build_static_json_s": None if build_static_s is None else round(build_static_s, 2),
        "mean_hits": round(statistics.mean(ours_hits), 1),
        "results_checked": "baseline hit counts equal ours on every baseline query",
    }
    return [
        Result(
            name="search p50 (bbox + time + CF name [+ text]) on 101k items",
            baseline="pystac walk of static JSON catalog",
            ours_s=detail["ours_p50_s"],
            baseline_s=detail["baseline_p50_s"],
            rows=len(items),
            detail=detail,
        ),
        Result(
            name="search p95 on 101k items",
            baseline="pystac walk of static JSON catalog",
            ours_s=detail["ours_p95_s"],
            baseline_s=detail["baseline_p95_s"],
            rows=len(items),
            detail=detail,
        ),
    ]
