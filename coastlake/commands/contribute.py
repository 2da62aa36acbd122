"""`lake contribute`: a file a provider sent, into its stream's dataset like a harvest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coastlake.commands.common import console, fail, open_registry


def register(app: typer.Typer) -> None:

    @app.command()
    def contribute(
        stream: Annotated[str, typer.Argument(help="Stream id the file belongs to.")],
        file: Annotated[Path, typer.Argument(help="CSV (the stream's layout) or NetCDF file.")],
        provider: Annotated[
            str | None,
            typer.Option(help="Who sent it (default: the stream's provider), for the log."),
        ] = None,
    ) -> None:
        """Put a provider's file through the raw zone, syntax test, QC and write of a harvest.

        A file that fails writes nothing and exits 1, naming the file and the fault.
        """
        from coastlake.contribute import contribute as run
        from lake.errors import LakeError
        from lake.storage import Storage

        if not file.is_file():
            console.print(f"[red]error:[/red] no file {file}")
            raise typer.Exit(2)
        registry = open_registry()
        try:
            chosen = registry.get(stream)
            done = run(
                Storage.from_settings(), registry, stream, file, provider or chosen.provider.name
            )
        except LakeError as exc:
            raise fail(exc) from None
        record = done.record
        if not done.ok:
            console.print(f"[red]{file.name} refused[/red] ({record.status}): {record.error}")
            raise typer.Exit(1)
        console.print(
            f"{file.name} → {stream}: {record.rows_in:,} values read, "
            f"{record.rows_added:,} new ({record.label})"
        )
