"""Data Stream Plans generated from the registry and the lake, as Markdown and HTML.

A plan says, for one stream: where the data come from, its category and QC path, the QARTOD
tests and thresholds in force for every stored series (after every override, as the QC step
resolves them), its metadata, what is kept and for how long (the rules and what the lake
really holds), and what was sent to the national archive. Nothing in it is typed by hand:
regenerate it and it follows the registry and the lake.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lake.errors import LakeError
from lake.reader import Lake
from lake.registry import Kind, Registry, Stream
from lake.status import stream_status
from qc.config import plan_for
from steward.ncei import submissions
from steward.retention import last_runs


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None


@dataclass
class StreamPlan:
    stream_id: str
    title: str
    generated_at: str
    sections: list[Section]


def streams_needing_plans(registry: Registry) -> list[Stream]:
    """Funded and regional streams need a plan (federal, model and static are exempt)."""
    return [s for s in registry.streams if s.category.needs_stream_plan]


def stream_plan(lk: Lake, registry: Registry, stream: Stream, now: datetime) -> StreamPlan:
    """The plan of `stream` from the registry and what the lake holds now."""
    return StreamPlan(
        stream_id=stream.id,
        title=stream.title,
        generated_at=now.isoformat(timespec="seconds"),
        sections=[
            _source(stream),
            _qc(lk, stream),
            _metadata(stream),
            _retention(lk, registry, stream),
            _archive(lk, stream),
        ],
    )


def _source(stream: Stream) -> Section:
    src = stream.source
    lines = [
        f"Provider: {stream.provider.name}"
        + (f" ({stream.provider.url})" if stream.provider.url else "")
        + (f", {stream.provider.email}" if stream.provider.email else ""),
        f"Category: {stream.category.value}; QC path: {stream.category.qc_path}",
        f"Kind: {stream.kind.value}; source: {src.kind} at {src.url or '(none)'}",
        f"Cadence: every {stream.cadence}",
    ]
    if stream.data_stream_plan:
        lines.append(f"Provider's own plan: {stream.data_stream_plan}")
    return Section("Source", lines)


def _qc(lk: Lake, stream: Stream) -> Section:
    section = Section("Quality control")
    if stream.kind != Kind.timeseries:
        section.lines.append(
            f"{stream.category.qc_path} (no per-value QARTOD tests on a {stream.kind.value})"
        )
        return section
    series = lk.sql(
        "SELECT DISTINCT station_id, variable FROM observations_all WHERE dataset_id = ? "
        "ORDER BY ALL",
        [stream.id],
    ).to_pylist()
    if not series:
        section.lines.append("No values stored yet: the tests apply from the first harvest.")
        return section
    rows = []
    for s in series:
        try:
            plan = plan_for(stream, s["station_id"], s["variable"])
        except LakeError as exc:
            rows.append([s["variable"], s["station_id"], "(invalid)", str(exc)])
            continue
        for test, params in sorted(plan.tests.items()):
            rows.append([s["variable"], s["station_id"], test, _params(params)])
        if not plan.tests:
            rows.append([s["variable"], s["station_id"], "(none)", "provider flags kept"])
    section.lines.append(
        "QARTOD tests in force for each stored series (ioos_qc), with their thresholds."
        + (" Provider flags are kept beside ours." if stream.category.value == "federal" else "")
    )
    section.table = (["variable", "station", "test", "thresholds"], rows)
    return section


def _params(params: dict[str, Any]) -> str:
    return json.dumps(params, default=str, sort_keys=True) if params else "-"


def _metadata(stream: Stream) -> Section:
    return Section(
        "Metadata",
        [
            f"Title: {stream.title}",
            f"Summary: {stream.summary.strip() or '-'}",
            f"License: {stream.license}",
            f"Citation: {stream.citation or '-'}",
            f"Keywords: {', '.join(stream.keywords) or '-'}",
            f"Publication: {stream.publication.value}",
            "Files follow CF 1.8, ACDD 1.3, the IOOS metadata profile 1.2 and NCEI's "
            "timeSeries template; coverage and ranges are computed from the values.",
        ],
    )


def _retention(lk: Lake, registry: Registry, stream: Stream) -> Section:
    rules = stream.retention
    lines = [
        "Rules: "
        + ("stored" if rules.keep else "not stored (the provider's terms forbid copies)")
        + (f", for {rules.days} days" if rules.keep and rules.days else "")
        + ("; raw responses kept" if rules.keep_raw and rules.keep else "; raw responses not kept")
        + ("; superseded model runs kept" if rules.superseded_runs else "")
    ]
    held = next((s for s in stream_status(lk, registry) if s.stream_id == stream.id), None)
    if held is not None:
        span = (
            f"{held.first_time:%Y-%m-%d %H:%M} to {held.last_time:%Y-%m-%d %H:%M} UTC"
            if held.first_time and held.last_time
            else "no time span"
        )
        lines.append(f"Held now: {held.rows:,} values at {held.stations} stations, {span}")
        if held.last_attempt:
            lines.append(f"Last harvest: {held.last_status} at {held.last_attempt:%Y-%m-%d %H:%M}")
    raw = len(lk.storage.list(lk.storage.url("raw", stream.id)))
    lines.append(f"Raw responses: {'none kept' if raw == 0 else f'kept ({raw} folders)'}")
    actions = [
        a
        for run in last_runs(lk.storage)
        for a in run.get("actions", [])
        if a.get("stream_id") == stream.id
    ][:5]
    lines += [f"Retention: deleted {a['count']:,} {a['what']} ({a['detail']})" for a in actions]
    return Section("Retention", lines)


def _archive(lk: Lake, stream: Stream) -> Section:
    section = Section("Archive")
    if not stream.archive.ncei:
        section.lines.append("Not sent to NCEI (archive.ncei is off).")
        return section
    section.lines.append(
        "Sent to NCEI monthly (lake archive ncei)"
        + (f", accession {stream.archive.accession}" if stream.archive.accession else "")
    )
    months = [
        url.rstrip("/").rsplit("/", 1)[-1]
        for url in lk.storage.list(lk.storage.url("archive", "ncei", "submissions", stream.id))
    ]
    rows = [
        [month, f"v{sub.version}", sub.status, sub.sent_at, str(len(sub.files))]
        for month in months
        for sub in submissions(lk.storage, stream.id, month)
    ]
    if rows:
        section.table = (["month", "version", "status", "sent", "files"], rows)
    else:
        section.lines.append("No month sent yet.")
    return section


def to_markdown(plan: StreamPlan) -> str:
    out = [
        f"# Data Stream Plan: {plan.title}",
        "",
        f"Stream `{plan.stream_id}`; generated {plan.generated_at} UTC from the registry "
        "and the lake.",
    ]
    for section in plan.sections:
        out += ["", f"## {section.title}", ""]
        out += [f"- {line}" for line in section.lines]
        if section.table:
            head, rows = section.table
            out += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_html(plan: StreamPlan) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Data Stream Plan: {e(plan.title)}</title></head><body>",
        f"<h1>Data Stream Plan: {e(plan.title)}</h1>",
        f"<p>Stream <code>{e(plan.stream_id)}</code>; generated {e(plan.generated_at)} UTC "
        "from the registry and the lake.</p>",
    ]
    for section in plan.sections:
        parts.append(f"<h2>{e(section.title)}</h2><ul>")
        parts += [f"<li>{e(line)}</li>" for line in section.lines]
        parts.append("</ul>")
        if section.table:
            head, rows = section.table
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
