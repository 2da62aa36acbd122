"""The review workflow: states, history, refusals, and the CLI that records them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lake.errors import ConfigError, NotFound
from lake.registry import Publication
from lake.settings import Settings
from lake.storage import Storage
from stac import publish
from stac.build import build_catalog
from tests.stac.conftest import DRAFT, stac_registry


@pytest.fixture
def empty_lake(tmp_path: Path) -> Storage:
    return Storage.from_settings(Settings(root=str(tmp_path / "lake")))


def test_initial_state_comes_from_the_registry(empty_lake: Storage) -> None:
    reg = stac_registry()
    assert publish.state(DRAFT, storage=empty_lake, registry=reg).state is Publication.draft
    st = publish.state("ndbc-44013-stdmet", storage=empty_lake, registry=reg)
    assert st.published and st.history == []
    with pytest.raises(NotFound, match="nope"):
        publish.state("nope", storage=empty_lake, registry=reg)


def test_history_records_who_when_and_why(empty_lake: Storage) -> None:
    kw: dict[str, Any] = {"storage": empty_lake, "registry": stac_registry()}
    publish.request_review(DRAFT, "Ann", "please check units", **kw)
    publish.reject(DRAFT, "Bob", "salinity units wrong", **kw)
    publish.request_review(DRAFT, "Ann", "fixed", **kw)
    final = publish.approve(DRAFT, "Bob", "ok now", **kw)
    assert final.state is Publication.published
    assert [(c.action, c.by, c.to_state) for c in final.history] == [
        ("request", "Ann", "review"),
        ("reject", "Bob", "draft"),
        ("request", "Ann", "review"),
        ("approve", "Bob", "published"),
    ]
    stored = json.loads(empty_lake.read_bytes(empty_lake.url(*publish.STATE_PATH)))
    assert stored[DRAFT]["history"][1]["note"] == "salinity units wrong"
    assert stored[DRAFT]["history"][0]["at"].endswith("Z")


def test_refuses_skipping_review_and_anonymous_reviews(empty_lake: Storage) -> None:
    kw: dict[str, Any] = {"storage": empty_lake, "registry": stac_registry()}
    with pytest.raises(ConfigError, match="is draft: cannot approve"):
        publish.approve(DRAFT, "Bob", "", **kw)
    with pytest.raises(ConfigError, match="--by"):
        publish.request_review(DRAFT, "  ", "", **kw)
    assert publish.state(DRAFT, **kw).history == []


def test_empty_lake_builds_a_valid_catalog_of_registry_entries(empty_lake: Storage) -> None:
    from stac.validate import validate_tree

    result = build_catalog(empty_lake, stac_registry())
    assert result.items == 0 and result.collections == 6
    reports = validate_tree(empty_lake.root + "/catalog")
    assert reports and all(r["valid_stac"] for r in reports.values())


@pytest.mark.slow
def test_cli_publish_and_status(tmp_path: Path) -> None:
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake"), "COLUMNS": "300"}
    lake = [sys.executable, "-m", "coastlake.cli"]
    if Path(sys.executable).with_name("lake").exists():
        lake = [str(Path(sys.executable).with_name("lake"))]
    done = subprocess.run(
        [*lake, "publish", "request", "ndbc-44029-ocean", "--by", "Ann", "--note", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "is published: cannot request" in done.stderr
    done = subprocess.run(
        [*lake, "publish", "reject", "ndbc-44029-ocean", "--by", "Ann", "--note", "withdrawn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    status = subprocess.run(
        [*lake, "publish", "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0
    line = next(ln for ln in status.stdout.splitlines() if "ndbc-44029-ocean" in ln)
    assert "draft" in line and "Ann" in line and "withdrawn" in line
    catalog = json.loads((tmp_path / "lake" / "catalog" / "catalog.json").read_text())
    assert not any("44029" in link["href"] for link in catalog["links"])
