"""`lake harvest`: run what is due, backfill a window, or keep watching at each cadence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from coastlake.commands.common import console, open_registry, out


def status_section(lk: object, registry: object) -> None:
    """`lake status` section: each stream's source kind, cadence, last attempt, next due,
    and when its provider's QC'd history is next re-read (`source.refresh`)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from ingest.history import last_refreshes, next_refresh
    from ingest.schedule import last_attempts, next_due
    from lake.errors import ConfigError

    storage = lk.storage  # type: ignore[attr-defined]
    last = last_attempts(storage)
    refreshed = last_refreshes(storage)
    now = datetime.now(UTC)

    def when(at: datetime) -> str:
        return "now" if at <= now else f"{at:%Y-%m-%d %H:%M:%S}"

    table = Table(
        "stream",
        "source",
        "cadence",
        "last attempt (UTC)",
        "next due",
        "history refresh",
        title="harvest schedule",
    )
    for stream in registry.streams:  # type: ignore[attr-defined]
        tried = last.get(stream.id)
        try:
            refresh = next_refresh(stream, refreshed.get(stream.id))
        except ConfigError as exc:  # a malformed rule is shown, not fatal to the status
            refresh_text = f"invalid: {exc}"
        else:
            refresh_text = "-" if refresh is None else when(refresh)
        table.add_row(
            stream.id,
            stream.source.kind,
            str(stream.cadence),
            f"{tried:%Y-%m-%d %H:%M:%S}" if tried else "never",
            when(next_due(stream, tried)),
            refresh_text,
        )
    out.print(table)


def register(app: typer.Typer) -> None:

    @app.command()
    def harvest(
        stream: Annotated[
            list[str] | None,
            typer.Option("--stream", "-s", help="Stream id (repeatable); runs it even if not due."),
        ] = None,
        since: Annotated[
            datetime | None, typer.Option(help="Backfill from (UTC), split as the source needs.")
        ] = None,
        until: Annotated[datetime | None, typer.Option(help="Backfill until (UTC).")] = None,
        all_streams: Annotated[
            bool, typer.Option("--all", help="Run every stream, due or not.")
        ] = False,
        watch: Annotated[
            bool, typer.Option("--watch", help="Keep harvesting at each stream's cadence (Ctrl-C).")
        ] = False,
        scheduler: Annotated[
            str | None,
            typer.Option(
                help="Dask scheduler (tcp://host:8786) to read and flag on; a backfill "
                "uses LAKE_DASK_SCHEDULER when this is not given."
            ),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(help="Read and flag on a local Dask cluster of this many processes."),
        ] = None,
    ) -> None:
        """Harvest streams from their sources into the lake.

        Without options, only streams whose cadence has passed since their last attempt
        run. Re-running is harmless: unchanged sources cost nothing and writes are merges.
        """
        from ingest.history import refreshes_due
        from ingest.schedule import due_streams
        from ingest.schedule import watch as watch_loop
        from lake.storage import Storage

        registry = open_registry()
        storage = Storage.from_settings()
        try:
            chosen = [registry.get(s) for s in stream] if stream else registry.streams
        except Exception as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        # A provider's QC'd history is re-read on each stream's own schedule (not in a
        # backfill, which names its window).
        scheduled = not (since or until)
        history = refreshes_due(storage, chosen) if scheduled and not watch else []
        if not (watch or stream or since or until or all_streams):
            chosen = due_streams(storage, chosen)
            if not chosen and not history:
                console.print("nothing is due (use --all or --stream to run anyway)")
                return
        # The job (QC, the catalog, their libraries) is loaded only when there is work.
        from coastlake.harvest import HarvestOptions, run_harvest
        from coastlake.history import run_refreshes

        options = HarvestOptions(since=since, until=until)
        # A backfill is heavy work and goes where the heavy jobs go; a real-time poll is a
        # few requests and stays here unless told otherwise.
        if scheduler is None and options.backfill:
            scheduler = storage.settings.dask_scheduler
        if workers is not None and workers < 1:
            console.print("[red]error:[/red] --workers must be at least 1")
            raise typer.Exit(2)
        if watch:
            if since or until:
                console.print("[red]error:[/red] --watch follows the sources; drop --since/--until")
                raise typer.Exit(2)
            console.print(f"watching {len(chosen)} streams; Ctrl-C to stop")
            try:
                watch_loop(
                    storage,
                    chosen,
                    lambda due: run_harvest(
                        storage, registry, due, options, progress=False, scheduler=scheduler
                    ),
                    refresh=lambda: run_refreshes(
                        storage, registry, refreshes_due(storage, chosen), progress=False
                    ),
                )
            except KeyboardInterrupt:
                console.print("stopped")
            return
        records = (
            run_harvest(storage, registry, chosen, options, scheduler=scheduler, workers=workers)
            if chosen
            else []
        )
        records += run_refreshes(storage, registry, history)
        failed = [r for r in records if r.status not in ("ok", "unchanged")]
        console.print(
            f"{len(chosen)} streams, {len(records)} requests, {len(failed)} failed, "
            f"{sum(r.rows_added for r in records):,} new values"
        )
        for r in failed:
            console.print(f"  [red]{r.stream_id}[/red] {r.status}: {r.error}")
        if failed:
            raise typer.Exit(1)
