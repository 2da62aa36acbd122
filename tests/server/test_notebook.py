"""The README's "In a notebook" recipes, run as written against a real lake and a real
`lake serve`: the grid through icechunk and OPeNDAP, the observations through DuckDB, Polars
and Dask, and STAC assets opened by their own hints; each result checked against the lake."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coastlake.harvest import run_harvest
from coastlake.server.app import create_app
from ingest.grids import ingest_grid
from lake.grids import GridStore
from lake.reader import Lake
from lake.registry import Registry, load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
from tests.grids.support import MW_SST, serve

README = Path(__file__).resolve().parents[2] / "README.md"


def notebook_code() -> str:
    text = README.read_text()
    section = text.split("## In a notebook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 4
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def lake_and_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("notebook") / "lake"
    sample = load_registry(SAMPLE_REGISTRY)
    grid = {
        "id": "mw-sst",
        "title": "SST, Aqua MODIS, West US, daily",
        "provider": {"name": "NOAA CoastWatch"},
        "category": "federal",
        "kind": "grid",
        "source": {"kind": "netcdf", "url": MW_SST.resolve().as_uri()},
        "license": "public domain (US government work)",
        "publication": "published",
    }
    registry = Registry.model_validate(
        {
            "streams": [sample.get("ndbc-44013-stdmet").model_dump(), grid],
            "path": str(SAMPLE_REGISTRY),
        }
    )
    storage = Storage.from_settings(Settings(root=str(root)))
    ingest_grid(storage, registry.get("mw-sst"))
    records = run_harvest(storage, registry, [registry.get("ndbc-44013-stdmet")], progress=False)
    assert any(r.status == "ok" and r.rows_added for r in records), records
    with serve(create_app(storage)) as base:
        yield root, base


def test_readme_notebook_recipes_run_as_written(lake_and_server: tuple[Path, str]) -> None:
    root, server = lake_and_server
    code = notebook_code()
    code = code.replace('root = "lake-data"', f"root = {str(root)!r}")
    code = code.replace('server = "http://127.0.0.1:8000"', f"server = {server!r}")
    scope: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), scope)

    storage = Storage.from_settings(Settings(root=str(root)))
    want = GridStore(storage, "mw-sst").open()
    np.testing.assert_array_equal(scope["grid"].sst.values, want.sst.values)
    np.testing.assert_array_equal(scope["remote"].sst.values, want.sst.values)
    np.testing.assert_array_equal(scope["ds"].sst.values, want.sst.values)
    assert scope["sst"].sizes["time"] == want.sizes["time"]

    lk = Lake(storage)
    (row,) = lk.sql(
        "SELECT count(*) AS n FROM observations_all WHERE dataset_id = 'ndbc-44013-stdmet'"
    ).to_pylist()
    (kept,) = lk.sql(
        "SELECT count(*) AS n FROM observations_all "
        "WHERE dataset_id = 'ndbc-44013-stdmet' AND qc_agg IS DISTINCT FROM 4"
    ).to_pylist()
    lk.close()
    assert int(scope["per_station"]["n"].sum()) == row["n"] > 1000
    assert scope["good"].height == kept["n"]
    assert len(scope["ddf"]) == row["n"]
    assert len(scope["rows"]) > 100 and "time" in scope["rows"].columns
