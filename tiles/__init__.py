"""Maps of the lake: TiTiler tiles, WMS, PNG previews, OPeNDAP/EDR for grids, OGC API
Features-style GIS layers. The server calls `tiles.app.install(app, deps)`."""
