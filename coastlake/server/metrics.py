"""Operations: `/healthz`, Prometheus `/metrics`, request logging, and the stream status page.

Request counts and latency are measured by a middleware; harvest freshness per stream and the
QC summary are computed from the lake when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

import html
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from lake.deps import LakeDeps
from lake.flags import FLAG_NAMES, NOT_EVALUATED
from lake.status import StreamStatus, stream_status

log = logging.getLogger("coastlake.server.app.access")

#: Methods counted by name; any other (an invented one) is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class LakeCollector(Collector):
    """Freshness of every stream and the QC flag counts, read from the lake at scrape time."""

    def __init__(self, ctx: LakeDeps) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC).replace(tzinfo=None)
        age = GaugeMetricFamily(
            "lake_stream_data_age_seconds",
            "Seconds since the newest observation of each stream",
            labels=["stream"],
        )
        harvest = GaugeMetricFamily(
            "lake_stream_last_harvest_timestamp_seconds",
            "Unix time of the last harvest attempt of each stream",
            labels=["stream", "status"],
        )
        rows = GaugeMetricFamily(
            "lake_stream_rows", "Observations held for each stream", labels=["stream"]
        )
        qc = GaugeMetricFamily(
            "lake_qc_values", "Values by QARTOD aggregate flag", labels=["dataset", "flag"]
        )
        try:
            for s in stream_status(self.ctx.lake, self.ctx.registry()):
                rows.add_metric([s.stream_id], s.rows)
                if s.last_time is not None:
                    age.add_metric([s.stream_id], (now - s.last_time).total_seconds())
                if s.last_attempt is not None:
                    stamp = s.last_attempt.replace(tzinfo=UTC).timestamp()
                    harvest.add_metric([s.stream_id, s.last_status or ""], stamp)
            for r in qc_summary(self.ctx):
                qc.add_metric([r["dataset_id"], r["flag"]], r["values"])
        except Exception:  # a scrape must never fail because the lake is busy or empty
            log.exception("metrics: could not read the lake")
        yield from (age, harvest, rows, qc)


def qc_summary(ctx: LakeDeps, dataset_id: str | None = None) -> list[dict[str, Any]]:
    """Count of values per dataset and QARTOD aggregate flag."""
    where, params = ("WHERE dataset_id = ?", [dataset_id]) if dataset_id else ("", [])
    rows = ctx.sql(
        f"SELECT dataset_id, coalesce(qc_agg, {NOT_EVALUATED}) AS flag, count(*) AS n "
        f"FROM observations_all {where} GROUP BY ALL ORDER BY ALL",
        params,
    ).to_pylist()
    return [
        {
            "dataset_id": r["dataset_id"],
            "flag": FLAG_NAMES.get(int(r["flag"]), str(r["flag"])),
            "values": int(r["n"]),
        }
        for r in rows
    ]


def install(app: FastAPI, ctx: LakeDeps) -> None:
    """Add the request middleware and the /healthz, /metrics, /status routes to `app`."""
    registry = CollectorRegistry()
    requests = Counter(
        "lake_http_requests",
        "HTTP requests served",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "lake_http_request_duration_seconds",
        "Time to answer a request",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    registry.register(LakeCollector(ctx))
    families: set[str] = set()  # first path segments of the app's routes, filled lazily

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        if not families:
            families.update(_first_segments(request.app))
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = request.scope.get("route")
            name = getattr(route, "path", None) or _route_family(request.url.path, families)
            method = request.method if request.method in HTTP_METHODS else "other"
            requests.labels(method, name, str(status)).inc()
            latency.labels(name).observe(elapsed)
            log.info(
                "%s %s %d %.1f ms",
                request.method,
                request.url.path + (f"?{request.url.query[:200]}" if request.url.query else ""),
                status,
                elapsed * 1000,
            )

    api = APIRouter(tags=["operations"])

    @api.get("/healthz")
    async def healthz() -> Response:
        """Alive and able to read the lake's storage (a listing, never a query, so it answers
        while heavy requests are busy; the lake's location is not told). A local lake is
        listed on the event loop itself (microseconds), so a full thread pool cannot delay
        the answer; a bucket is listed on a worker thread."""
        try:
            if ctx.storage.is_s3:
                await anyio.to_thread.run_sync(ctx.storage.fs.ls, ctx.storage.root)
            else:
                os.listdir(ctx.storage.root)
        except FileNotFoundError:
            pass  # a lake not harvested yet is still a healthy server
        except OSError as exc:
            log.error("healthz: storage unreadable: %s", exc)
            return JSONResponse({"status": "storage unreadable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @api.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @api.get("/status.json")
    def status_json() -> list[dict[str, Any]]:
        """Every stream: freshness, last harvest, last error, QC summary."""
        return [_status_dict(s, ctx) for s in stream_status(ctx.lake, ctx.registry())]

    @api.get("/status")
    def status_page() -> Response:
        """The same as /status.json, as a page for people."""
        rows = status_json()
        head = (
            "<tr><th>stream</th><th>category</th><th>stations</th><th>values</th>"
            "<th>newest data</th><th>age (h)</th><th>last harvest</th><th>result</th>"
            "<th>last error</th><th>QC</th></tr>"
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r["stream_id"],
                    r["category"],
                    r["stations"],
                    r["rows"],
                    r["last_time"] or "-",
                    "-" if r["age_hours"] is None else f"{r['age_hours']:.1f}",
                    r["last_attempt"] or "never",
                    r["last_status"] or "-",
                    r["last_error"] or "",
                    ", ".join(f"{k}: {v}" for k, v in r["qc"].items()),
                )
            )
            + "</tr>"
            for r in rows
        )
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>coastlake status</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
            "</style></head><body><h1>Streams</h1><table id='streams'>"
            f"{head}{body}</table></body></html>"
        )
        return Response(page, media_type="text/html")

    app.include_router(api)


def _status_dict(s: StreamStatus, ctx: LakeDeps) -> dict[str, Any]:
    now = datetime.now(UTC).replace(tzinfo=None)
    qc = {r["flag"]: r["values"] for r in qc_summary(ctx, s.stream_id)}
    return {
        "stream_id": s.stream_id,
        "category": s.category,
        "qc_path": s.qc_path,
        "plan": s.plan,
        "stations": s.stations,
        "rows": s.rows,
        "first_time": _iso(s.first_time),
        "last_time": _iso(s.last_time),
        "age_hours": (now - s.last_time).total_seconds() / 3600 if s.last_time else None,
        "last_ingest": _iso(s.last_ingest),
        "last_attempt": _iso(s.last_attempt),
        "last_status": s.last_status,
        "last_error": s.last_error,
        "qc": qc,
    }


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _route_family(path: str, families: set[str]) -> str:
    """A low-cardinality label for paths no route matched (404s, static files): the first
    segment when some route of the app starts with it, else "other" (invented paths must not
    add series)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    return "/" + parts[0] if parts[0] in families else "other"


def _first_segments(app: FastAPI) -> set[str]:
    """The first path segment of every route and mount of `app`."""
    out = set()
    for route in app.routes:
        segment = str(getattr(route, "path", "")).strip("/").split("/", 1)[0]
        if segment and not segment.startswith("{"):
            out.add(segment)
    return out
