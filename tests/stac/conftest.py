"""A sample lake with a catalog: the shipped NDBC streams, a draft copy of one of them and
an external ERDDAP reference, harvested once per session from the recorded real files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lake.registry import Registry, load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage

DRAFT = "ndbc-44029-draft"
EXTERNAL = "partner-erddap-mwra"
GRID = "ersst-v4"
LAYER = "ca-state-boundary"
GRIDS = Path(__file__).resolve().parent.parent / "data" / "grids"


def stac_registry() -> Registry:
    sample = load_registry(SAMPLE_REGISTRY)
    # Only the two NDBC streams: the sample registry grows as other areas add sources.
    streams = [sample.get(i).model_dump() for i in ("ndbc-44013-stdmet", "ndbc-44029-ocean")]
    draft = next(s for s in streams if s["id"] == "ndbc-44029-ocean").copy()
    draft.update(id=DRAFT, title="A01 ocean data, second copy awaiting review", publication="draft")
    external = {
        "id": EXTERNAL,
        "title": "MWRA Boston Harbor water quality (partner ERDDAP, not copied)",
        "summary": "Chlorophyll and dissolved oxygen at Boston Harbor, served by a partner.",
        "provider": {
            "name": "Massachusetts Water Resources Authority",
            "url": "https://www.mwra.com",
        },
        "category": "federal",
        "kind": "timeseries",
        "source": {
            "kind": "external",
            "url": "https://erddap.example.org/erddap/tabledap/mwra_harbor.html",
            "bbox": [-71.05, 42.28, -70.9, 42.38],
            "start": "2019-01-01T00:00:00Z",
            "end": "2022-12-31T00:00:00Z",
            "parameters": [
                {"name": "mass_concentration_of_chlorophyll_in_sea_water", "unit": "ug L-1"}
            ],
            "itis": [{"tsn": 2286, "name": "Bacillariophyta"}],
        },
        "license": "CC-BY-4.0",
        "publication": "published",
        "keywords": ["water quality", "harbor"],
    }
    grid = {
        "id": GRID,
        "title": "NOAA ERSST v4 monthly sea surface temperature (global 2 degree grid)",
        "provider": {"name": "NOAA NCEI", "url": "https://www.ncei.noaa.gov"},
        "category": "federal",
        "kind": "grid",
        "source": {"kind": "netcdf", "url": (GRIDS / "ersst.v4.201606.nc").resolve().as_uri()},
        "variables": [
            {"source": "sst", "standard_name": "sea_surface_temperature", "units": "degree_C"}
        ],
        "license": "public domain (US government work)",
        "publication": "published",
    }
    layer = {
        "id": LAYER,
        "title": "California state boundary (TIGER 2016)",
        "provider": {"name": "US Census Bureau"},
        "category": "static",
        "kind": "vector",
        "source": {"kind": "gis", "url": (GRIDS / "gis" / "CA_State_TIGER2016.shp").as_uri()},
        "publication": "published",
    }
    return Registry.model_validate(
        {"streams": [*streams, draft, external, grid, layer], "path": str(SAMPLE_REGISTRY)}
    )


@dataclass
class SampleLake:
    storage: Storage
    registry: Registry
    root: Path


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> SampleLake:
    """Ingest a real grid and GIS layer, then harvest the recorded NDBC files: the
    pipeline's AFTER_HARVEST step builds the catalog."""
    from coastlake.harvest import run_harvest
    from stac.describe import is_external

    root = tmp_path_factory.mktemp("stac") / "lake"
    storage = Storage.from_settings(Settings(root=str(root)))
    registry = stac_registry()
    from ingest.grids import ingest_grid
    from lake.layers import ingest_layer

    ingest_grid(storage, registry.get(GRID))
    ingest_layer(storage, LAYER, GRIDS / "gis" / "CA_State_TIGER2016.shp", title="California")
    series = [s for s in registry.streams if not is_external(s) and s.kind.value == "timeseries"]
    records = run_harvest(storage, registry, series, progress=False)
    assert all(r.status == "ok" for r in records), records
    return SampleLake(storage, registry, root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stac_server(sample_lake: SampleLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn on 127.0.0.1: an app with the STAC API mounted at /stac, as the server mounts
    it, and the map services its grid assets point at; yields the API's URL."""
    port = _free_port()
    app_dir = tmp_path_factory.mktemp("app")
    (app_dir / "stac_test_app.py").write_text(
        "import os\n"
        "from lake.settings import Settings\nfrom lake.storage import Storage\n"
        "from fastapi import FastAPI\n"
        "import stac.search_api\nimport tiles.app\n"
        "from coastlake.server.app import create_app\n"
        "storage = Storage.from_settings(Settings(root=os.environ['STAC_TEST_ROOT']))\n"
        "app = create_app(storage, parts=(stac.search_api.install, tiles.app.install))\n"
    )
    env = {
        **os.environ,
        "STAC_TEST_ROOT": str(sample_lake.root),
        "PYTHONPATH": f"{app_dir}{os.pathsep}{Path(__file__).resolve().parents[2]}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "stac_test_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"STAC server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(url + "/stac/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("STAC server did not start in 90 s")
    yield url + "/stac"
    proc.terminate()
    proc.wait(timeout=20)
