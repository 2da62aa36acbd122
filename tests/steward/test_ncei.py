"""Monthly NCEI archive packages from a real lake: a file per station and month that passes
the NCEI timeSeries template, a manifest whose checksums are the files', a submission record
in the lake; a second run sends nothing, late data sends the month again as a new version."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import xarray as xr

from lake.errors import NotFound, RequestError
from lake.reader import Lake
from lake.registry import Registry
from steward.ncei import archive_month, months_due, record_status, submissions
from tests.steward.compliance import NCEI_TIMESERIES, high_failures

MONTH = "2022-05"
STREAM = "ndbc-44013-stdmet"
NOW = datetime(2022, 7, 1)


def test_archive_sends_each_month_once_and_a_changed_month_as_a_new_version(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    out = tmp_path / "ncei"
    [first] = archive_month(lk, registry, MONTH, str(out), now=NOW)
    assert (first.stream_id, first.action) == ("ndbc-44013-stdmet", "sent")  # archive.ncei
    sent = first.submission
    assert sent is not None and sent.version == 1 and len(sent.files) == 1
    folder = out / "ndbc-44013-stdmet" / MONTH / "v1"
    manifest = json.loads((folder / "manifest.json").read_text())
    for f in manifest["files"]:
        body = (folder / f["name"]).read_bytes()
        assert f["bytes"] == len(body) and f["sha256"] == hashlib.sha256(body).hexdigest()
    lines = (folder / "manifest-sha256.txt").read_text().split()
    assert lines == [sent.files[0].sha256, sent.files[0].name]
    nc = folder / sent.files[0].name
    # CF is checked on station files of the same writer (test_netcdf_metadata); here the
    # archive file's own attributes against NCEI's template, ACDD and IOOS.
    failures = high_failures(nc, ("acdd:1.3", "ioos:1.2", NCEI_TIMESERIES))
    assert {k: [m for m in v if not m.startswith("NDBC/GTS")] for k, v in failures.items()} == {
        k: [] for k in failures
    }
    with xr.open_dataset(nc) as ds:
        assert ds.attrs["time_coverage_start"].startswith("2022-05-01")
        assert ds.attrs["time_coverage_end"].startswith("2022-05-31")
        assert ds.attrs["product_version"] == "v1"
        assert "sea_surface_temperature_qc_agg" in ds

    again = archive_month(lk, registry, MONTH, str(out), now=NOW)
    assert [o.action for o in again] == ["unchanged"]
    assert sorted(p.name for p in (out / "ndbc-44013-stdmet" / MONTH).iterdir()) == ["v1"]

    # Late data: one more value in May, as a backfill would bring it.
    late = lk.sql(
        "select * from observations_all where dataset_id = 'ndbc-44013-stdmet' "
        "and time = '2022-05-15 12:00:00' and variable = 'sea_surface_temperature'"
    ).to_pandas()
    assert len(late) == 1
    late["time"] = pd.Timestamp("2022-05-15 12:05:00")
    late["value"] = 9.5
    lk.observations.write(pa.Table.from_pandas(late, preserve_index=False))
    [changed] = archive_month(lk, registry, MONTH, str(out), now=NOW)
    assert changed.action == "sent" and changed.submission is not None
    assert changed.submission.version == 2 and changed.submission.replaces == 1
    assert changed.submission.files[0].rows == sent.files[0].rows + 1
    assert [s.version for s in submissions(lk.storage, "ndbc-44013-stdmet", MONTH)] == [1, 2]
    assert [o.action for o in archive_month(lk, registry, MONTH, str(out), now=NOW)] == [
        "unchanged"
    ]


def test_archive_refuses_an_open_month_and_skips_an_empty_one(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    with pytest.raises(RequestError, match="has not ended"):
        archive_month(lk, registry, "2022-06", str(tmp_path), now=datetime(2022, 6, 20))
    with pytest.raises(RequestError, match="YYYY-MM"):
        archive_month(lk, registry, "May 2022", str(tmp_path))
    assert [o.action for o in archive_month(lk, registry, "2019-01", str(tmp_path))] == ["empty"]
    assert not list(tmp_path.iterdir())


def test_months_due_are_every_unsent_ended_month_and_the_last_ones(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    archive_month(lk, registry, MONTH, str(tmp_path), now=NOW)  # May sent (or unchanged)
    # The NDBC file runs 2022-04-21 .. 2022-06-05; July has not ended on NOW.
    sent = {m for m in ("2022-04", "2022-05", "2022-06") if submissions(lk.storage, STREAM, m)}
    assert "2022-05" in sent
    assert months_due(lk, registry, NOW, recheck=0) == sorted({"2022-04", "2022-06"} - sent)
    assert months_due(lk, registry, NOW, recheck=2) == ["2022-04", "2022-05", "2022-06"]
    assert months_due(lk, registry, datetime(2022, 6, 10), recheck=0) == sorted({"2022-04"} - sent)


def test_ncei_answer_is_recorded_on_the_submission(
    sample_lake: tuple[Lake, Registry], tmp_path: Path
) -> None:
    lk, registry = sample_lake
    archive_month(lk, registry, "2022-04", str(tmp_path), now=NOW)
    record = record_status(lk.storage, "ndbc-44013-stdmet", "2022-04", "accepted", "0299999")
    again = submissions(lk.storage, "ndbc-44013-stdmet", "2022-04")[-1]
    assert (
        (again.status, again.accession)
        == ("accepted", "0299999")
        == (
            record.status,
            record.accession,
        )
    )
    with pytest.raises(RequestError, match="not one of"):
        record_status(lk.storage, "ndbc-44013-stdmet", "2022-04", "lost")
    with pytest.raises(NotFound, match="no submission"):
        record_status(lk.storage, "ndbc-44013-stdmet", "2019-01", "accepted")
