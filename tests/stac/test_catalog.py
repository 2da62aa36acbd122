"""The static catalog and the geoparquet built from the sample lake, checked against it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pyarrow.parquet as pq
import pystac
import pytest

from lake.reader import Lake
from stac.validate import schema_map, validate_tree
from tests.stac.conftest import DRAFT, EXTERNAL, GRID, LAYER, SampleLake


def test_every_static_file_passes_stac_validator(sample_lake: SampleLake) -> None:
    reports = validate_tree(sample_lake.root / "catalog")
    assert len(reports) >= 7  # root, 4 collections (1 unlisted), 3 station items
    bad = {p: r.get("error_message") for p, r in reports.items() if not r.get("valid_stac")}
    assert not bad, bad


@pytest.mark.slow
def test_stac_validator_cli_on_every_file(sample_lake: SampleLake) -> None:
    """The stac-validator command itself, once per file (core schemas mapped offline)."""
    maps: list[str] = []
    for url, path in schema_map().items():
        maps += ["-s", url, path]
    files = sorted((sample_lake.root / "catalog").rglob("*.json"))
    for file in files:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "stac_validator.stac_validator",
                "validate",
                "--core",
                *maps,
                str(file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (file, done.stdout[-2000:], done.stderr[-2000:])
        assert '"valid_stac": true' in done.stdout


def test_validator_catches_a_broken_item(sample_lake: SampleLake, tmp_path: Path) -> None:
    src = next((sample_lake.root / "catalog" / "ndbc-44013-stdmet").rglob("wmo-44013.json"))
    broken = json.loads(src.read_text())
    broken["properties"]["license"] = "public domain (US government work)"
    (tmp_path / "x.json").write_text(json.dumps(broken))
    (report,) = validate_tree(tmp_path).values()
    assert report["valid_stac"] is False


def test_published_only_in_root_and_drafts_unlisted(sample_lake: SampleLake) -> None:
    root = pystac.Catalog.from_file(str(sample_lake.root / "catalog" / "catalog.json"))
    children = {c.id for c in root.get_children()}
    assert children == {"ndbc-44013-stdmet", "ndbc-44029-ocean", EXTERNAL, GRID, LAYER}
    unlisted = sample_lake.root / "catalog" / "unlisted" / DRAFT / "collection.json"
    assert pystac.Collection.from_file(str(unlisted)).id == DRAFT


def test_extents_and_parameters_match_the_lake(sample_lake: SampleLake) -> None:
    lk = Lake(sample_lake.storage)
    facts = lk.sql(
        "SELECT dataset_id, station_id, min(time) t0, max(time) t1, "
        "list(DISTINCT variable ORDER BY variable) vars FROM observations_all GROUP BY ALL"
    ).to_pylist()
    stations = {r["dataset_id"]: r for r in lk.sql("SELECT * FROM stations").to_pylist()}
    lk.close()
    root = pystac.Catalog.from_file(str(sample_lake.root / "catalog" / "catalog.json"))
    for fact in facts:
        if fact["dataset_id"] == DRAFT:
            continue
        col = root.get_child(fact["dataset_id"])
        assert isinstance(col, pystac.Collection)
        (item,) = list(col.get_items())
        assert item.properties["ioos:station_urn"] == fact["station_id"]
        assert item.common_metadata.start_datetime == fact["t0"].replace(tzinfo=UTC)
        assert item.common_metadata.end_datetime == fact["t1"].replace(tzinfo=UTC)
        assert [p["name"] for p in item.properties["cf:parameter"]] == fact["vars"]
        st = stations[fact["dataset_id"]]
        assert item.geometry is not None
        assert item.geometry["coordinates"] == [st["lon"], st["lat"]]
        assert item.properties["ioos:wmo_id"] == st["wmo_id"]
        assert col.extent.spatial.bboxes[0] == [st["lon"], st["lat"], st["lon"], st["lat"]]
        assert col.extent.temporal.intervals[0][0] == fact["t0"].replace(tzinfo=UTC)
        asset = item.assets["observations"]
        assert Path(asset.href).is_dir() and (Path(asset.href) / "_delta_log").is_dir()
        assert "table:columns" in asset.extra_fields
        assert col.extra_fields["sci:citation"]
        assert "License:" in col.extra_fields["coastlake:intellectual_property"]
        roles = [(p.description or "").split(":")[0] for p in col.providers or []]
        assert roles == ["originator", "distributor"]
        acdd = col.extra_fields["coastlake:acdd"]
        assert acdd["time_coverage_start"].startswith(fact["t0"].isoformat()[:19])


def test_external_feed_is_a_catalog_entry(sample_lake: SampleLake) -> None:
    col = pystac.Collection.from_file(
        str(sample_lake.root / "catalog" / EXTERNAL / "collection.json")
    )
    assert col.assets["source"].href.startswith("https://erddap.example.org/")
    assert col.extent.spatial.bboxes[0] == [-71.05, 42.28, -70.9, 42.38]
    assert col.extra_fields["coastlake:external"] is True
    assert col.extra_fields["coastlake:taxa"][0]["tsn"] == "2286"
    assert "Bacillariophyta" in (col.keywords or [])
    assert [p.description for p in col.providers or []] == ["originator"]


def test_geoparquet_holds_every_item(sample_lake: SampleLake) -> None:
    table = pq.read_table(sample_lake.root / "stac" / "items.parquet")
    assert sorted(zip(table["collection"].to_pylist(), table["id"].to_pylist(), strict=True)) == [
        (LAYER, LAYER),
        (GRID, GRID),
        ("ndbc-44013-stdmet", "wmo-44013"),
        ("ndbc-44029-draft", "wmo-44029"),
        ("ndbc-44029-ocean", "wmo-44029"),
    ]
    assert b"geo" in (table.schema.metadata or {})


def test_grid_is_a_datacube_with_open_hints(sample_lake: SampleLake) -> None:
    from lake.grids import GridStore

    ds = GridStore(sample_lake.storage, GRID).open()
    col = pystac.Collection.from_file(str(sample_lake.root / "catalog" / GRID / "collection.json"))
    (item,) = list(col.get_items())
    assert item.properties["cube:dimensions"]["lon"]["extent"] == [
        float(ds.lon.min()),
        float(ds.lon.max()),
    ]
    assert item.properties["cube:variables"]["sst"]["unit"] == "degree_C"
    assert [p["name"] for p in item.properties["cf:parameter"]] == ["sea_surface_temperature"]
    assert item.common_metadata.start_datetime is not None
    assert item.common_metadata.start_datetime.date().isoformat() == "2016-06-01"
    zarr = col.assets["zarr"]
    assert "xarray:open_kwargs" not in zarr.extra_fields  # Icechunk: no plain-Zarr keywords
    assert Path(zarr.href).is_dir()
    opendap = col.assets["opendap"]
    assert opendap.href.endswith(f"/grids/datasets/{GRID}/opendap")
    assert opendap.extra_fields["xarray:open_kwargs"] == {"engine": "netcdf4"}
    assert any("datacube" in e for e in col.stac_extensions)
    assert col.extra_fields["coastlake:provider_metadata"]["title"] == ds.attrs["title"]
    assert col.license == "other" and "public domain" in col.extra_fields["coastlake:license_text"]


def test_layer_item_describes_the_geoparquet(sample_lake: SampleLake) -> None:
    import geopandas as gpd

    col = pystac.Collection.from_file(str(sample_lake.root / "catalog" / LAYER / "collection.json"))
    (item,) = list(col.get_items())
    gdf = gpd.read_parquet(item.assets["geoparquet"].href)
    assert item.properties["table:row_count"] == len(gdf)
    assert item.bbox == pytest.approx([float(v) for v in gdf.total_bounds])
