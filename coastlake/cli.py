"""The `lake` command line: set up, harvest, query and look after the lake."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from coastlake.commands import catalog, contribute, grids, harvest, qc, serve, steward
from coastlake.commands.common import console, fail, open_registry, out, setup_logging
from lake.errors import LakeError
from lake.settings import get_settings

# Heavy libraries (DuckDB, xarray, the server) are imported inside the commands that need
# them, so `lake --help` and `lake check` start in a fraction of a second.

#: The sections of `lake status` after the streams, in the order a data manager reads them:
#: station states, the harvest schedule, publication states, grids and layers.
STATUS_SECTIONS = (
    qc.status_section,
    harvest.status_section,
    catalog.status_section,
    grids.status_section,
    steward.status_section,
)

app = typer.Typer(
    help="coastlake: a cloud-native data lake for regional ocean observing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show detail.")] = False,
) -> None:
    setup_logging(verbose)


@app.command()
def init(
    root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
) -> None:
    """Create the lake's tables at LAKE_ROOT and check the registry."""
    from lake.reader import Lake

    registry = open_registry()
    lk = Lake.open(root)
    lk.observations.create()
    console.print(
        f"lake ready at {lk.root} with {len(registry.streams)} streams registered "
        f"in {registry.path}"
    )


@app.command()
def check(
    registry: Annotated[
        str | None, typer.Argument(help="Registry file (default LAKE_REGISTRY).")
    ] = None,
) -> None:
    """Validate the stream registry and every stream's source settings."""
    from ingest.kinds import get_harvester, is_harvested

    reg = open_registry(registry)
    try:
        for stream in reg.streams:
            if is_harvested(stream.source.kind):
                get_harvester(stream.source.kind).requests(stream, None, None)
    except LakeError as exc:
        raise fail(exc) from None
    console.print(f"{reg.path}: {len(reg.streams)} streams, all valid")


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(
            help="A DuckDB query over the views observations, observations_all and stations."
        ),
    ],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
) -> None:
    """Run SQL over the lake with DuckDB and print the result."""
    import duckdb

    from lake.reader import Lake

    try:
        result = Lake.open(root).sql(query)
    except (duckdb.Error, LakeError) as exc:
        raise fail(exc) from None
    rows = result.to_pylist()
    if format is Format.json:
        sys.stdout.write(json.dumps(rows, default=str, indent=1) + "\n")
    elif format is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.column_names)
        writer.writerows([list(r.values()) for r in rows])
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(*result.column_names)
        for r in rows[:1000]:
            table.add_row(*["" if v is None else str(v) for v in r.values()])
        out.print(table)
        if len(rows) > 1000:
            console.print(f"({len(rows)} rows; first 1000 shown; use --format csv for all)")


@app.command()
def status(
    root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
) -> None:
    """Every stream: category, QC path, Data Stream Plan, rows, time span, last harvest."""
    from lake.reader import Lake
    from lake.status import stream_status

    registry = open_registry()
    lk = Lake.open(root)
    table = Table(
        "stream",
        "category / QC path",
        "plan",
        "stations",
        "rows",
        "time span (UTC)",
        "last harvest",
        title=f"streams in {lk.root}",
    )
    for s in stream_status(lk, registry):
        harvest = s.last_status or "never"
        if s.last_attempt:
            harvest += f" {s.last_attempt:%Y-%m-%d %H:%M}"
        if s.last_error:
            harvest += f": {s.last_error[:100]}"
        span = "-"
        if s.first_time and s.last_time:
            span = f"{s.first_time:%Y-%m-%d %H:%M} .. {s.last_time:%Y-%m-%d %H:%M}"
        plan = (
            "exempt"
            if s.plan == "exempt"
            else ("MISSING" if s.plan.startswith("required") else "on file")
        )
        table.add_row(
            s.stream_id,
            f"{s.category}: {s.qc_path}",
            plan,
            str(s.stations),
            f"{s.rows:,}",
            span,
            harvest,
        )
    out.print(table)
    for section in STATUS_SECTIONS:
        section(lk, registry)


@app.command()
def compact(
    min_files: Annotated[
        int, typer.Option(help="Rewrite partitions with at least this many files.")
    ] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (default LAKE_DASK_SCHEDULER); one task per partition."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Without a scheduler: a local cluster of this many processes (default: "
            "partitions one at a time in this process, the least memory)."
        ),
    ] = None,
    root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
) -> None:
    """Merge small files into large ones sorted by station and time."""
    from lake.compaction import compact as compact_lake
    from lake.storage import Storage

    try:
        n = compact_lake(
            Storage.from_settings(root=root),
            scheduler=scheduler,
            workers=workers,
            min_files=min_files,
        )
    except LakeError as exc:  # e.g. other writers kept winning the commit race
        raise fail(exc) from None
    console.print(f"compacted {n} partitions")


@app.command()
def vacuum(
    retention_hours: Annotated[
        int | None,
        typer.Option(help="Keep replaced files this long (default LAKE_VACUUM_RETENTION_HOURS)."),
    ] = None,
    root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
) -> None:
    """Delete files that compaction replaced, once older than the retention window."""
    from lake.reader import Lake

    hours = (
        retention_hours if retention_hours is not None else get_settings().vacuum_retention_hours
    )
    from lake.maintenance import vacuum as vacuum_table

    try:
        report = vacuum_table(Lake.open(root).observations, timedelta(hours=hours))
    except LakeError as exc:
        raise fail(exc) from None
    console.print(report.summary(hours))


@app.command()
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the lake afterwards.")
    ] = True,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Build the sample lake from the shipped registry, then serve it."""
    from coastlake.demo import build_demo

    registry = open_registry()
    try:
        summary = build_demo(registry)
    except LakeError as exc:
        raise fail(exc) from None
    for line in summary:
        console.print(line)
    if serve:
        from coastlake.server.app import run

        run(host=host, port=port)


for group in (harvest, contribute, qc, grids, catalog, steward, serve):
    group.register(app)
