"""Maps of the lake: TiTiler tiles, WMS, PNG previews, OPeNDAP/EDR for grids, OGC API
Features-style GIS layers. The server calls `tiles.mount(app, storage)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lake.storage import Storage


def mount(app: FastAPI, storage: Storage) -> None:
    """Add every map route (/tiles, /wms, /grids, /features) to the server `app`."""
    from tiles.app import mount as _mount

    _mount(app, storage)


__all__ = ["mount"]
