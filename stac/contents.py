"""What the lake holds, read once per catalog build: station extents through DuckDB and
grid extents from the grid store (when the grid store is part of this build)."""

from __future__ import annotations

import json
import logging
from typing import Any

from lake.grids import GridInfo, list_grids
from lake.layers import list_layers
from lake.reader import Lake
from lake.storage import Storage
from stac.describe import iso, when
from stac.extents import GridExtent, LakeContents, LayerExtent, Parameter, StationExtent

log = logging.getLogger(__name__)

#: Station extents from the series state kept at write time (one row per series), and the
#: number of values of each station; a full scan of the rows only for stations the state
#: does not know (a lake written by other means than the harvester).
_STATION_SQL = """
WITH counts AS (
    SELECT dataset_id, station_id, count(*) AS n FROM observations_all GROUP BY ALL
),
known AS (
    SELECT dataset_id, station_id, min(first_time) AS t0, max(last_time) AS t1, min(z) AS z0,
           max(z) AS z1, avg(lon) AS lon, avg(lat) AS lat,
           list(DISTINCT struct_pack(name := variable, unit := units)) AS params
    FROM series GROUP BY dataset_id, station_id
),
unknown AS (
    SELECT dataset_id, station_id, min(time) AS t0, max(time) AS t1, min(z) AS z0,
           max(z) AS z1, avg(lon) AS lon, avg(lat) AS lat,
           list(DISTINCT struct_pack(name := variable, unit := units)) AS params
    FROM observations_all
    WHERE (dataset_id, station_id) IN (
        SELECT (dataset_id, station_id) FROM counts
        EXCEPT SELECT (dataset_id, station_id) FROM known
    )
    GROUP BY dataset_id, station_id
),
ext AS (
    SELECT e.*, c.n FROM (SELECT * FROM known UNION ALL SELECT * FROM unknown) e
    JOIN counts c USING (dataset_id, station_id)
)
SELECT ext.*, s.name, s.lon AS s_lon, s.lat AS s_lat, s.wmo_id, s.platform, s.provider,
       s.attributes
FROM ext LEFT JOIN {stations} s USING (dataset_id, station_id)
ORDER BY dataset_id, station_id
"""


def read_contents(storage: Storage) -> LakeContents:
    """Station and grid extents of everything in the lake."""
    contents = LakeContents()
    lk = Lake(storage)
    try:
        con = lk.connection()
        has_stations = bool(
            con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE view_name = 'stations'"
            ).fetchone()[0]  # type: ignore[index]
        )
        stations = (
            "stations"
            if has_stations
            else (
                "(SELECT NULL::VARCHAR AS dataset_id, NULL::VARCHAR AS station_id, "
                "NULL::VARCHAR AS name, NULL::DOUBLE AS lon, NULL::DOUBLE AS lat, "
                "NULL::VARCHAR AS wmo_id, NULL::VARCHAR AS platform, NULL::VARCHAR AS provider, "
                "NULL::VARCHAR AS attributes WHERE false)"
            )
        )
        rows = lk.sql(_STATION_SQL.format(stations=stations)).to_pylist()
    finally:
        lk.close()
    for r in rows:
        lon = r["s_lon"] if r["s_lon"] is not None else r["lon"]
        lat = r["s_lat"] if r["s_lat"] is not None else r["lat"]
        if lon is None or lat is None:
            log.warning(
                "dataset=%s station=%s has no position; left out of the catalog",
                r["dataset_id"],
                r["station_id"],
            )
            continue
        params = tuple(
            sorted({Parameter(p["name"], p["unit"]) for p in r["params"]}, key=lambda p: p.name)
        )
        contents.stations.setdefault(r["dataset_id"], []).append(
            StationExtent(
                dataset_id=r["dataset_id"],
                station_id=r["station_id"],
                name=r["name"],
                lon=float(lon),
                lat=float(lat),
                wmo_id=r["wmo_id"],
                platform=r["platform"],
                provider=r["provider"],
                attributes=provider_attributes(r["attributes"]),
                start=r["t0"],
                end=r["t1"],
                z_min=r["z0"],
                z_max=r["z1"],
                rows=int(r["n"]),
                parameters=params,
            )
        )
    for grid in _grids(storage):
        contents.grids.setdefault(grid.dataset_id, []).append(grid)
    for layer in _layers(storage):
        contents.layers.setdefault(layer.dataset_id, []).append(layer)
    return contents


def _layers(storage: Storage) -> list[LayerExtent]:
    """Vector layers of the lake, for the catalog."""
    out = []
    for info in list_layers(storage):
        ingested_at = when(info.ingested_at) if info.ingested_at else None
        out.append(
            LayerExtent(
                dataset_id=info.layer_id,
                url=info.url,
                bbox=[float(v) for v in info.bbox],
                features=int(info.features),
                geometry_types=list(info.geometry_types),
                columns=list(info.columns),
                title=info.title,
                source=info.source,
                ingested_at=ingested_at,
            )
        )
    return out


def _grids(storage: Storage) -> list[GridExtent]:
    """Grid extents of the lake, for the catalog."""
    out = []
    for info in list_grids(storage):
        try:
            out.extend(_grid_extents(info))
        except Exception as exc:  # one odd grid must not stop the catalog
            log.warning(
                "grid %s left out of the catalog: %s", getattr(info, "dataset_id", "?"), exc
            )
    return out


def _grid_extents(info: GridInfo) -> list[GridExtent]:
    """The grid, and each model run it keeps, as catalog extents ([] without a bbox)."""
    if info.bbox is None:
        return []
    bbox = [float(v) for v in info.bbox]
    params = tuple(
        sorted(
            {Parameter(v.standard_name, v.units) for v in info.variables if v.standard_name},
            key=lambda p: p.name,
        )
    )
    start, end = info.time_start, info.time_end
    dims = _cube_dimensions(info, bbox)
    variables = _cube_variables(info, dims)
    attrs = {k: _plain(v) for k, v in (info.attrs or {}).items()}
    base = GridExtent(
        dataset_id=info.dataset_id,
        item_id=info.dataset_id,
        url=info.url,
        bbox=bbox,
        start=start,
        end=end,
        parameters=params,
        dims=dims,
        variables=variables,
        attributes=attrs,
        title=str(attrs.get("title", "")),
    )
    runs = list(info.runs or [])
    if not runs:
        return [base]
    # A forecast dataset: the best estimate plus one item per model run kept.
    return [base] + [
        GridExtent(
            **{
                **base.__dict__,
                "item_id": f"{info.dataset_id}-run-{_safe(run)}",
                "title": f"{base.title or info.dataset_id}: run {run}",
                "start": _parse(run) or start,
            }
        )
        for run in runs
    ]


def _cube_dimensions(info: GridInfo, bbox: list[float]) -> dict[str, dict[str, Any]]:
    """Datacube dimensions of a grid: lon/lat from its bbox, time, and other levels as z."""
    start, end = info.time_start, info.time_end
    dims: dict[str, dict[str, Any]] = {
        "lon": {
            "type": "spatial",
            "axis": "x",
            "extent": [bbox[0], bbox[2]],
            "reference_system": 4326,
        },
        "lat": {
            "type": "spatial",
            "axis": "y",
            "extent": [bbox[1], bbox[3]],
            "reference_system": 4326,
        },
    }
    if start is not None:
        dims["time"] = {
            "type": "temporal",
            "extent": [iso(start), iso(end or start)],
        }
    for name, values in (info.extra_dims or {}).items():
        if values:
            dims[name] = {"type": "spatial", "axis": "z", "extent": [min(values), max(values)]}
    return dims


def _cube_variables(info: GridInfo, dims: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Datacube variables of a grid: dimensions, description and unit of each."""
    return {
        v.name: {
            "type": "data",
            "dimensions": list(v.dims) or list(dims),
            "description": v.long_name or v.standard_name or v.name,
            **({"unit": v.units} if v.units else {}),
        }
        for v in info.variables
    }


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))


def _parse(text: str) -> Any:
    try:
        return when(text)
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def provider_attributes(raw: str | None) -> dict[str, Any]:
    """Station attributes JSON from the stations table, as a dict ({} if unreadable)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}
