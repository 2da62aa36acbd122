"""`lake qc`: reprocess flags over history, build the climatology, show the QC tables.

Also adds the station-state section (active / stale / offline) to `lake status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from coastlake.commands.common import console, fail, open_registry, out

if TYPE_CHECKING:
    from lake.reader import Lake
    from lake.registry import Registry


def status_section(lk: Lake, registry: Registry) -> None:
    """The `lake status` section: every station's state and the time of its last value."""
    from rich.table import Table

    from qc.status import station_states

    states = station_states(lk)
    table = Table("dataset", "station", "name", "state", "last value (UTC)", title="stations")
    colour = {"active": "green", "stale": "yellow", "offline": "red"}
    for s in states:
        table.add_row(
            s.dataset_id,
            s.station_id,
            s.name or "",
            f"[{colour[s.state]}]{s.state}[/{colour[s.state]}]",
            str(s.last_time or "-"),
        )
    out.print(table)


def register(app: typer.Typer) -> None:

    qc_app = typer.Typer(help="QARTOD quality control (ioos_qc): reprocess, climatology.")
    climatology_app = typer.Typer(help="Monthly expected ranges from the lake's history.")
    qc_app.add_typer(climatology_app, name="climatology")
    app.add_typer(qc_app, name="qc")

    @qc_app.command("reprocess")
    def reprocess_cmd(
        stream: Annotated[str, typer.Option("--stream", "-s", help="Stream id.")],
        since: Annotated[datetime | None, typer.Option(help="From this time (UTC).")] = None,
        until: Annotated[datetime | None, typer.Option(help="Until this time (UTC).")] = None,
        scheduler: Annotated[
            str | None,
            typer.Option(
                help="Dask scheduler address (default LAKE_DASK_SCHEDULER); one task per series."
            ),
        ] = None,
        workers: Annotated[
            int, typer.Option(help="Local cluster processes (without a scheduler).")
        ] = 2,
        root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
    ) -> None:
        """Recompute the QC flags of a stream over history on Dask, in one commit."""
        from lake.errors import LakeError
        from lake.storage import Storage
        from qc.reprocess import reprocess

        registry = open_registry()
        try:
            result = reprocess(
                Storage.from_settings(root=root),
                registry.get(stream),
                since,
                until,
                scheduler=scheduler,
                workers=workers,
            )
        except LakeError as exc:
            raise fail(exc) from None
        console.print(
            f"{stream}: {result.series} series checked, {result.changed:,} values re-flagged"
        )

    @climatology_app.command("build")
    def climatology_build(
        stream: Annotated[
            list[str] | None, typer.Option("--stream", "-s", help="Only these streams.")
        ] = None,
        root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
    ) -> None:
        """Derive per-station, per-month ranges from >= 2 years of history in the lake."""
        from lake.storage import Storage
        from qc.climatology import build_climatology

        table = build_climatology(Storage.from_settings(root=root), stream or None)
        series = {
            (r["dataset_id"], r["station_id"], r["variable"])
            for r in table.select(["dataset_id", "station_id", "variable"]).to_pylist()
        }
        console.print(
            f"climatology: {table.num_rows} monthly ranges for {len(series)} series"
            " (series with less than 2 years of history get none: flag 2)"
        )

    @qc_app.command("thresholds")
    def thresholds(
        variable: Annotated[str | None, typer.Argument(help="A CF standard name.")] = None,
    ) -> None:
        """Show the gross-range table (and its sources) by CF standard name."""
        from rich.table import Table

        from qc.catalogue import TABLE_TESTS
        from qc.config import threshold_table

        table = Table("variable", "test", "thresholds", "source", title="QC thresholds")
        for name, entry in sorted(threshold_table().items()):
            if variable and name != variable:
                continue
            sources = entry.get("source", {})
            for test in TABLE_TESTS:
                if test not in entry:
                    continue
                src = (
                    f"fail: {sources.get('fail_span')}; suspect: {sources.get('suspect_span')}"
                    if test == "gross_range"
                    else str(sources.get(test, ""))
                )
                table.add_row(name, test, str(entry[test]), src)
        out.print(table)
