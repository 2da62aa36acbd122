"""The STAC catalog of the lake: description, search, and publication after review.

- `stac.build.build_catalog(storage, registry)`: rebuild the static catalog under
  `<root>/catalog/` and the stac-geoparquet items under `<root>/stac/` (run after every
  harvest through `lake.pipeline.AFTER_HARVEST`).
- `stac.mount(app, storage)`: mount the STAC API at `/stac` on a FastAPI app.
- `stac.publish`: `request_review`, `approve`, `reject`, `state(dataset_id)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lake.storage import Storage


def mount(app: FastAPI, storage: Storage) -> None:
    """Mount the STAC API at `/stac` on `app` (imported lazily: the API pulls in FastAPI)."""
    from stac.api import mount as _mount

    _mount(app, storage)


__all__ = ["mount"]
