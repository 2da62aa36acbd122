"""Validate catalog files with stac-validator, offline.

stac-validator fetches the STAC JSON schemas from the web; this machine (and a user's
air-gapped deployment) has no web. pystac ships the official STAC 1.1.0 core and GeoJSON
schemas, so we map their URLs to those files and validate each object against the core
schemas. Extension schemas (datacube, table, xarray-assets, cf, scientific) are not shipped
by any installed package: given a folder of them (`<name>-v<version>.json`, as published
at stac-extensions.github.io), `schema_map(extensions)` maps those too, and PROJJSON (which
datacube refers to) to the copy pyproj ships.
"""

from __future__ import annotations

import logging
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_STAC = "https://schemas.stacspec.org/v1.1.0"
_ITEM_PARTS = (
    "bands",
    "basics",
    "common",
    "data-values",
    "datetime",
    "instrument",
    "licensing",
    "provider",
)


def extension_map(folder: str | Path) -> dict[str, str]:
    """Extension schema URL -> local file, for every `<name>-v<version>.json` in `folder`."""
    out: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*-v*.json")):
        name, _, version = path.stem.rpartition("-v")
        out[f"https://stac-extensions.github.io/{name}/v{version}/schema.json"] = str(path)
    import pyproj

    projjson = Path(pyproj.datadir.get_data_dir()) / "projjson.schema.json"
    if projjson.exists():  # datacube's reference_system may be PROJJSON (v0.4 is a subset)
        out["https://proj.org/schemas/v0.4/projjson.schema.json"] = str(projjson)
    return out


def schema_map(extensions: str | Path | None = None) -> dict[str, str]:
    """Remote STAC 1.1.0 schema URL -> the copy pystac ships (plus the JSON Schema draft 7),
    and the extension schemas in the folder `extensions` when given."""
    base = Path(str(resources.files("pystac.validation") / "jsonschemas"))
    out = {
        f"{_STAC}/{name}-spec/json-schema/{name}.json": str(
            base / "stac-spec" / "v1.1.0" / f"{name}.json"
        )
        for name in ("item", "catalog", "collection")
    }
    out.update(
        {
            f"{_STAC}/item-spec/json-schema/{name}.json": str(
                base / "stac-spec" / "v1.1.0" / f"{name}.json"
            )
            for name in _ITEM_PARTS
        }
    )
    out.update(
        {
            f"https://geojson.org/schema/{name}.json": str(base / "geojson" / f"{name}.json")
            for name in ("Feature", "Geometry")
        }
    )
    draft7 = resources.files("jsonschema_specifications") / "schemas" / "draft7" / "metaschema.json"
    out["http://json-schema.org/draft-07/schema"] = str(draft7)
    if extensions is not None:
        out.update(extension_map(extensions))
    return out


def validate_file(path: str | Path) -> dict[str, Any]:
    """stac-validator's report for one file (core schemas, offline); `valid_stac` says it."""
    with warnings.catch_warnings():
        # stac-validator 4.1 is a shim over stac-valid and warns so on import; same code.
        warnings.simplefilter("ignore", DeprecationWarning)
        from stac_validator.validate import StacValidate

    validator = StacValidate(str(path), core=True, schema_map=schema_map(), verbose=False)
    validator.run()
    return dict(validator.message[0]) if validator.message else {"valid_stac": False}


def validate_tree(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Validate every JSON file under a local catalog folder; returns reports by path."""
    return {str(p): validate_file(p) for p in sorted(Path(folder).rglob("*.json"))}
