"""`lake serve`: the server and the portal over the lake at LAKE_ROOT."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
        root: Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")] = None,
    ) -> None:
        """Serve tabledap, SQL, downloads, STAC, tiles and the map portal."""
        from coastlake.server.app import run
        from lake.settings import get_settings
        from lake.storage import Storage

        storage = Storage.from_settings(get_settings(), root=root) if root else None
        run(host=host, port=port, storage=storage)
