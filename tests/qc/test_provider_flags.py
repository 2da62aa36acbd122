"""Provider flags on the real files: NERRS CDMO rejects (`<-3>`) and CO-OPS limit flags
enter `qc_agg` through their provider's table, a reject is masked from what is served,
federal values carry a gross range flag, and no value passes without a test beyond syntax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coastlake.harvest import harvest_stream
from lake.flags import FAIL, MISSING, NOT_EVALUATED, PASS, SUSPECT
from lake.reader import Lake
from lake.registry import load_registry
from lake.settings import SAMPLE_REGISTRY, Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.aggregate import aggregate
from qc.provider_flags import cdmo_flag, coops_flag, provider_qartod

SQL = (
    "SELECT a.value AS stored, o.value AS served, a.provider_flag, a.qc_agg, a.qc_gross_range, "
    "a.variable FROM observations_all a JOIN observations o USING "
    "(dataset_id, station_id, variable, z, time) WHERE a.dataset_id = ?"
)


def harvested(tmp_path: Path, stream_id: str) -> list[dict[str, Any]]:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    stream = load_registry(SAMPLE_REGISTRY).get(stream_id)
    ObservationTable(storage).create()
    records = harvest_stream(storage, stream)
    assert any(r.status == "ok" and r.rows_added for r in records), records
    return Lake(storage).sql(SQL, [stream_id]).to_pylist()


def test_nerrs_rejects_are_not_served_as_good(tmp_path: Path) -> None:
    rows = harvested(tmp_path, "nerrs-gndblwq")
    rejected = [r for r in rows if r["provider_flag"] and "<-3>" in r["provider_flag"]]
    assert len(rejected) == 5  # what CDMO rejected in the recorded 2021 export
    for r in rejected:
        assert r["qc_agg"] == FAIL, r
        assert r["stored"] is not None and r["served"] is None  # kept, masked by default
    suspect = [r for r in rows if r["provider_flag"] and r["provider_flag"].startswith("<1>")]
    assert suspect and all(r["qc_agg"] in (SUSPECT, FAIL) for r in suspect)
    # Federal values carry a gross range flag where the table has limits.
    tested = [r for r in rows if r["qc_gross_range"] != NOT_EVALUATED]
    assert {r["variable"] for r in tested} >= {"sea_water_temperature"}
    # Nothing passes without a test beyond syntax that passed it.
    assert all(r["qc_gross_range"] == PASS for r in rows if r["qc_agg"] == PASS)


def test_coops_flags_make_values_suspect(tmp_path: Path) -> None:
    rows = harvested(tmp_path, "coops-9447130-water-level")
    flagged = [r for r in rows if "f=1" in (r["provider_flag"] or "")]
    assert len(flagged) == 30  # values CO-OPS flagged in the recorded January 2015 file
    assert all(r["qc_agg"] in (SUSPECT, FAIL) for r in flagged)
    clean = [r for r in rows if "f=0,0,0,0" in (r["provider_flag"] or "")]
    assert clean and all(r["qc_agg"] != SUSPECT or r["qc_gross_range"] == SUSPECT for r in clean)
    assert all(r["qc_agg"] != PASS or r["qc_gross_range"] == PASS for r in rows)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("<0> ", PASS),
        ("<1> [SDO] (CCU)", SUSPECT),
        ("<-3> [GIC]", FAIL),
        ("<-5> ", FAIL),
        ("<-2> ", MISSING),
        ("<5> (CSM)", NOT_EVALUATED),
        ("", 0),
    ],
)
def test_cdmo_table(text: str, flag: int) -> None:
    assert cdmo_flag(text) == flag


def test_coops_table() -> None:
    assert coops_flag("f=0,0,0,0;q=v;s=0.023") == PASS
    assert coops_flag("f=1,0,0,0;q=v;s=0.1") == SUSPECT
    assert coops_flag("q=p") == 0
    assert list(provider_qartod("erddap", ["1", "4", "9", None, "x"])) == [1, 4, 9, 0, 0]


def test_pass_needs_a_test_beyond_syntax() -> None:
    syntax = np.ones(4, np.int8)
    gross = np.array([1, 2, 3, 4], np.int8)
    assert list(aggregate({"syntax": syntax}, None, 4)) == [2, 2, 2, 2]
    assert list(aggregate({"syntax": syntax, "gross_range": gross}, None, 4)) == [1, 2, 3, 4]
    provider = np.array([1, 4, 0, 1], np.int8)
    assert list(aggregate({"syntax": syntax}, provider, 4)) == [2, 4, 2, 2]
