"""GIS layers from URLs over real HTTP: a Shapefile (its sidecars fetched beside it), a
zipped Shapefile, GeoJSON and GeoPackage; every file kept in the raw zone; a Shapefile
whose .dbf is missing fails naming it and leaves the stored layer as it was.

Files: California's TIGER 2016 state boundary and CDFW's marine protected areas (recorded
Shapefiles); the GeoJSON and GeoPackage are the state boundary written by GeoPandas, as a
provider serving those formats would."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest

from coastlake.harvest import harvest_stream
from lake.layers import layer_info, read_layer
from lake.storage import Storage
from tests.grids.support import GIS
from tests.ingest.support import make_stream
from tests.support.http import Reply

STATE = "CA_State_TIGER2016"
MPA = "MPA_CA_StateAndFederal_180905"


def layer_stream(url: str):  # type: ignore[no-untyped-def]
    return make_stream("ca-layer", {"kind": "gis", "url": url}, kind="vector")


def harvest_layer(storage: Storage, url: str):  # type: ignore[no-untyped-def]
    [record] = harvest_stream(storage, layer_stream(url), qc_step=None)
    return record


def raw_files(storage: Storage) -> list[str]:
    return sorted(p.name for p in Path(storage.root, "raw", "ca-layer").rglob("*") if p.is_file()
                  and not p.name.endswith(".json"))  # fmt: skip


def test_shapefile_url_fetches_its_sidecars(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        http_server.routes[f"/gis/{STATE}{suffix}"] = GIS / f"{STATE}{suffix}"
    record = harvest_layer(storage, f"{http_server.url}/gis/{STATE}.shp")
    assert record.status == "ok", record.error
    assert record.rows_in == 1  # one feature: the state
    asked = {path for path, _ in http_server.hits}
    assert {f"/gis/{STATE}{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")} <= asked
    assert len(raw_files(storage)) == 5  # every file as served, by content hash
    info = layer_info(storage, "ca-layer")
    assert info.bbox == pytest.approx((-124.48, 32.53, -114.13, 42.01), abs=0.01)
    assert info.source_crs == "EPSG:3857"  # Web Mercator in the .prj, stored as lon/lat


def test_zipped_shapefile_geojson_and_geopackage(http_server, local_settings, tmp_path) -> None:
    storage = Storage.from_settings(local_settings)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        for part in sorted(GIS.glob(f"{MPA}.*")):
            z.write(part, part.name)
    http_server.routes["/gis/mpa.zip"] = Reply(packed.getvalue(), content_type="application/zip")
    record = harvest_layer(storage, f"{http_server.url}/gis/mpa.zip")
    assert record.status == "ok", record.error
    assert record.rows_in == len(gpd.read_file(GIS / f"{MPA}.shp")) > 100
    state = gpd.read_file(GIS / f"{STATE}.shp").to_crs("EPSG:4326")
    state.to_file(tmp_path / "state.geojson", driver="GeoJSON")
    state.to_file(tmp_path / "state.gpkg", driver="GPKG")
    served = {
        "state.geojson": "application/geo+json",
        "state.gpkg": "application/geopackage+sqlite3",
    }
    for name, kind in served.items():
        http_server.routes[f"/gis/{name}"] = Reply(
            (tmp_path / name).read_bytes(), content_type=kind
        )
        record = harvest_layer(storage, f"{http_server.url}/gis/{name}")
        assert record.status == "ok", (name, record.error)
        stored = read_layer(storage, "ca-layer")
        assert len(stored) == 1 and stored.geometry.iloc[0].equals_exact(
            state.geometry.iloc[0], 1e-9
        )
    assert len(raw_files(storage)) == 3


def test_missing_dbf_names_it_and_keeps_the_layer(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    for suffix in (".shp", ".shx", ".dbf", ".prj"):
        http_server.routes[f"/gis/{STATE}{suffix}"] = GIS / f"{STATE}{suffix}"
    assert harvest_layer(storage, f"{http_server.url}/gis/{STATE}.shp").status == "ok"
    before = layer_info(storage, "ca-layer")
    del http_server.routes[f"/gis/{STATE}.dbf"]
    record = harvest_layer(storage, f"{http_server.url}/gis/{STATE}.shp")
    assert record.status == "failed"
    assert f"{STATE}.dbf" in record.error and "needs its .dbf" in record.error
    assert layer_info(storage, "ca-layer") == before


def test_sidecar_in_the_other_case_is_found(http_server, local_settings) -> None:
    """CDFW ships `.shp` beside `.CPG`: the upper-case sidecar is fetched."""
    storage = Storage.from_settings(local_settings)
    for part in GIS.glob(f"{MPA}.*"):
        http_server.routes[f"/gis/{part.name}"] = part
    record = harvest_layer(storage, f"{http_server.url}/gis/{MPA}.shp")
    assert record.status == "ok", record.error
    assert f"/gis/{MPA}.CPG" in {path for path, _ in http_server.hits}
    assert len(raw_files(storage)) == 5
