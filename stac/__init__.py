"""The STAC catalog of the lake: description, search, and publication after review.

- `stac.build.build_catalog(storage, registry)`: rebuild the static catalog under
  `<root>/catalog/` and the stac-geoparquet items under `<root>/stac/` (the harvest job
  calls `stac.build.rebuild_after_harvest` at its end).
- `stac.search_api.install(app, deps)`: mount the STAC API at `/stac` on the server.
- `stac.publish`: `request_review`, `approve`, `reject`, `state(dataset_id)`.
"""
