"""`lake harvest`: run what is due, or backfill a window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def harvest(
        stream: Annotated[
            list[str] | None, typer.Option("--stream", "-s", help="Stream id (repeatable).")
        ] = None,
        since: Annotated[datetime | None, typer.Option(help="Backfill from (UTC).")] = None,
        until: Annotated[datetime | None, typer.Option(help="Backfill until (UTC).")] = None,
    ) -> None:
        """Harvest streams from their sources into the lake."""
        from ingest.harvest import HarvestOptions
        from lake.cli import console, open_registry
        from lake.pipeline import run_harvest
        from lake.storage import Storage

        registry = open_registry()
        try:
            streams = [registry.get(s) for s in stream] if stream else registry.streams
        except Exception as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        records = run_harvest(
            Storage.from_settings(), registry, streams, HarvestOptions(since=since, until=until)
        )
        failed = [r for r in records if r.status not in ("ok", "unchanged")]
        console.print(
            f"{len(records)} harvests, {len(failed)} failed, "
            f"{sum(r.rows_added for r in records):,} new values"
        )
        for r in failed:
            console.print(f"  [red]{r.stream_id}[/red] {r.status}: {r.error}")
        if failed:
            raise typer.Exit(1)
