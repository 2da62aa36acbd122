"""The JSON the portal page reads: stations with their real-time state, datasets, series.

Station states come from `qc.status.station_states(lk, now)`: active while the newest value
is under 4 hours old, stale (a grey dot) until a week, offline after (off the real-time map,
still on the historical).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from coastlake.server.erddap.datasets import DatasetSummary, find_dataset, list_datasets
from coastlake.server.metrics import qc_summary
from ingest.kinds import source_priority
from lake.deps import LakeDeps, check_dataset_id, check_station_id
from lake.errors import NotFound, RequestError
from lake.grids import list_grids, open_grid
from lake.layers import list_layers
from lake.times import parse_time
from qc.status import StationState
from qc.status import station_states as qc_station_states

log = logging.getLogger(__name__)

MAX_SERIES_POINTS = 200_000


def station_states(ctx: LakeDeps, now: datetime | None = None) -> list[StationState]:
    """Station states by the 4-hour and 1-week rules, from the QC package."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return list(qc_station_states(ctx.lake, now=now))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def stations_geojson(ctx: LakeDeps, now: datetime | None = None) -> dict[str, Any]:
    """Every station of a published dataset ever seen, as GeoJSON points with state, last
    time and latest values. A draft's data stay reachable by id; the map, like the catalog,
    is for discovering what is published."""
    published = {d.dataset_id for d in list_datasets(ctx, published_only=True)}
    features = []
    for s in station_states(ctx, now):
        if s.lon is None or s.lat is None or s.dataset_id not in published:
            continue
        values = {k: v for k, v in dict(s.last_values or {}).items()}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(s.lon), float(s.lat)]},
                "properties": {
                    "dataset_id": s.dataset_id,
                    "station_id": s.station_id,
                    "name": s.name or s.station_id,
                    "state": str(getattr(s.state, "value", s.state)),
                    "last_time": _iso(s.last_time),
                    "last_values": json.dumps(values),
                    **{f"v_{k}": v for k, v in values.items() if v is not None},
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _dataset_doc(d: DatasetSummary) -> dict[str, Any]:
    return {
        "dataset_id": d.dataset_id,
        "title": d.title,
        "summary": d.summary,
        "institution": d.institution,
        "license": d.license,
        "citation": d.citation,
        "keywords": list(d.keywords),
        "published": d.published,
        "variables": list(d.variables),
        "bbox": [d.min_lon, d.min_lat, d.max_lon, d.max_lat] if d.min_lon is not None else None,
        "time_start": _iso(d.min_time),
        "time_end": _iso(d.max_time),
    }


def find_datasets(ctx: LakeDeps, q: str = "") -> list[dict[str, Any]]:
    """Published datasets whose id, title, summary, keywords or variables hold every word
    of `q` (case-insensitive); all of them for an empty `q`."""
    words = q.lower().split()
    out = []
    for d in list_datasets(ctx, published_only=True):
        text = " ".join([d.dataset_id, d.title, d.summary, *d.keywords, *d.variables]).lower()
        if all(w in text for w in words):
            out.append(_dataset_doc(d))
    return out


def dataset_details(ctx: LakeDeps, dataset_id: str) -> dict[str, Any]:
    """A dataset's summary plus provider, category, units by variable, stations with
    their first and last time, and values per QC flag. NotFound for an unknown id."""
    check_dataset_id(dataset_id)
    d = find_dataset(ctx, dataset_id)
    if d is None:
        raise NotFound(f"no dataset {dataset_id!r} in this lake")
    doc = _dataset_doc(d)
    stream = ctx.stream(dataset_id)
    doc["provider"] = stream.provider.model_dump() if stream else None
    doc["category"] = stream.category.value if stream else None
    doc["provider_plan"] = stream.data_stream_plan if stream else None
    doc["units"] = {
        r["variable"]: r["units"]
        for r in ctx.sql(
            "SELECT variable, any_value(units) AS units FROM observations_all "
            "WHERE dataset_id = ? GROUP BY variable ORDER BY variable",
            [dataset_id],
        ).to_pylist()
    }
    doc["stations"] = [
        {"station_id": s["station_id"], "first": _iso(s["first"]), "last": _iso(s["last"])}
        for s in ctx.sql(
            "SELECT station_id, min(time) AS first, max(time) AS last FROM observations_all "
            "WHERE dataset_id = ? GROUP BY station_id ORDER BY station_id",
            [dataset_id],
        ).to_pylist()
    ]
    doc["qc"] = {r["flag"]: r["values"] for r in qc_summary(ctx, dataset_id)}
    doc["sources"] = dataset_sources(ctx, dataset_id)
    doc["source_priority"] = source_priority(stream) if stream else {}
    return doc


def dataset_sources(ctx: LakeDeps, dataset_id: str) -> list[dict[str, Any]]:
    """Which of the provider's products the stored values came from (real time, monthly,
    verified, upload, ...), their rank (the higher replaces the lower) and time span."""
    return [
        {
            "source": r["source"],
            "rank": r["source_rank"],
            "values": r["n"],
            "first": _iso(r["first"]),
            "last": _iso(r["last"]),
        }
        for r in ctx.sql(
            "SELECT source, source_rank, count(*) AS n, min(time) AS first, max(time) AS last "
            "FROM observations_all WHERE dataset_id = ? GROUP BY source, source_rank "
            "ORDER BY source_rank NULLS FIRST, source",
            [dataset_id],
        ).to_pylist()
    ]


def series_points(
    ctx: LakeDeps,
    dataset_id: str,
    station: str,
    variable: str,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Times (epoch seconds), values and QC flags of one variable at one station, for a
    plot. Refused (413) above MAX_SERIES_POINTS: a browser cannot draw more."""
    check_dataset_id(dataset_id)
    check_station_id(station)
    where = ["dataset_id = ?", "station_id = ?", "variable = ?"]
    params: list[Any] = [dataset_id, station, variable]
    if start:
        where.append("time >= ?")
        params.append(parse_time(start, "start"))
    if end:
        where.append("time <= ?")
        params.append(parse_time(end, "end"))
    table = ctx.sql(
        "SELECT epoch(time) AS t, value, qc_agg, units FROM observations_all "
        f"WHERE {' AND '.join(where)} ORDER BY time LIMIT {MAX_SERIES_POINTS + 1}",
        params,
    )
    if table.num_rows > MAX_SERIES_POINTS:
        raise RequestError("too many points for a plot; choose a shorter window", status=413)
    if table.num_rows == 0:
        raise NotFound(f"no {variable!r} at {station!r} in dataset {dataset_id!r}")
    units = table.column("units")[0].as_py()
    return {
        "dataset_id": dataset_id,
        "station_id": station,
        "variable": variable,
        "units": units,
        "time": table.column("t").to_pylist(),
        "value": table.column("value").to_pylist(),
        "qc": table.column("qc_agg").to_pylist(),
    }


def vector_layers(ctx: LakeDeps) -> list[dict[str, Any]]:
    """One entry per GIS layer: id, title, bbox, feature count, geometry types, GeoJSON URL."""
    return [
        {
            "id": info.layer_id,
            "title": info.title or info.layer_id,
            "bbox": list(info.bbox),
            "features": info.features,
            "geometry_types": list(info.geometry_types),
            "url": f"/data/layers/{info.layer_id}.geojson",
        }
        for info in list_layers(ctx.storage)
    ]


def router(ctx: LakeDeps) -> APIRouter:
    """Routes under /api, read by the portal."""
    api = APIRouter(prefix="/api", tags=["portal"])

    @api.get("/stations")
    def stations() -> dict[str, Any]:
        """All stations with state active|stale|offline (the page filters for each map)."""
        return stations_geojson(ctx)

    @api.get("/datasets")
    def datasets(q: str = "") -> list[dict[str, Any]]:
        """Published datasets, filtered by words in id, title, summary, keywords, variables."""
        return find_datasets(ctx, q)

    @api.get("/datasets/{dataset_id}")
    def dataset(dataset_id: str) -> dict[str, Any]:
        """Metadata, citation, attribution, stations, variables with units and QC summary."""
        return dataset_details(ctx, dataset_id)

    @api.get("/series/{dataset_id}")
    def series(
        dataset_id: str,
        station: str,
        variable: str,
        start: str | None = None,
        end: str | None = None,
    ) -> dict[str, Any]:
        """One variable of one station with its QC flags; failed values included, flagged."""
        return series_points(ctx, dataset_id, station, variable, start, end)

    @api.get("/layers")
    def layers() -> list[dict[str, Any]]:
        """GIS vector layers (lake.layers) the map can overlay, with their GeoJSON URL."""
        return vector_layers(ctx)

    @api.get("/grids")
    def grids() -> list[dict[str, Any]]:
        """Grid layers for the map: tile URL template (with {time}) and the times to slide over."""
        return grid_layers(ctx)

    return api


def grid_layers(ctx: LakeDeps, max_times: int = 500) -> list[dict[str, Any]]:
    """One entry per (grid, 2-D variable): id, title, units, tiles URL template, times."""
    out: list[dict[str, Any]] = []
    for info in list_grids(ctx.storage):
        try:
            ds = open_grid(ctx.storage, info.dataset_id)
        except Exception:
            log.exception("grid %s could not be opened for the portal", info.dataset_id)
            continue
        times: list[str] = []
        if "time" in ds.coords:
            stamps = ds["time"].values[-max_times:]
            times = [str(t)[:19] for t in stamps]
        for var in info.variables:
            extra = dict(info.extra_dims or {})
            spatial = [d for d in var.dims if d != "time" and d not in extra]
            if len(spatial) != 2:
                continue
            sel = "".join(f"&sel={d}={v[0]:g}" for d, v in extra.items() if d in var.dims and v)
            sel += "&sel=time={time}" if times else ""
            out.append(
                {
                    "id": f"{info.dataset_id}/{var.name}",
                    "title": f"{info.dataset_id}: {var.long_name or var.standard_name or var.name}",
                    "units": var.units,
                    "tiles": f"/tiles/{info.dataset_id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png"
                    f"?variable={var.name}{sel}",
                    "times": times,
                }
            )
    return out


#: STAC Browser, built from npm into the portal's static folder (portal/stac-browser.mjs).
STAC_BROWSER = Path(__file__).resolve().parent / "portal_static" / "stac-browser"


def stac_browser_config(server_root: str) -> str:
    """STAC Browser's runtime configuration: this server's STAC API, nothing else."""
    config = {
        "catalogUrl": f"{server_root}/stac/",
        "catalogTitle": "coastlake",
        "allowExternalAccess": False,
    }
    return f"window.STAC_BROWSER_CONFIG = {json.dumps(config)};\n"


def install(app: FastAPI, deps: LakeDeps) -> None:
    """Add the portal's JSON routes under /api, and STAC Browser at /stac-browser/ when built."""
    app.include_router(router(deps))
    if not (STAC_BROWSER / "index.html").exists():
        log.warning("STAC Browser not built (%s missing): run ./bootstrap", STAC_BROWSER)
        return

    @app.get("/stac-browser/config.js", include_in_schema=False)
    def stac_browser_config_js(request: Request) -> Response:
        root = str(request.base_url).rstrip("/")
        return Response(stac_browser_config(root), media_type="text/javascript")

    app.mount("/stac-browser", StaticFiles(directory=STAC_BROWSER, html=True), name="stac-browser")
