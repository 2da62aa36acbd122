"""coastlake: a cloud-native data lake for regional ocean observing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lake.reader import Lake

__all__ = ["Lake"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import lake.settings` in a worker does not pull in DuckDB and xarray.
    if name == "Lake":
        from lake.reader import Lake

        return Lake
    raise AttributeError(name)
