"""NERRS CDMO exports over HTTP as CDMO's download page serves them: a zip archive of CSVs.
The recorded Grand Bay export (gndblwq2021.csv) is zipped as CDMO packs it; the values are
the same as read from the CSV itself, and each carries CDMO's review stage."""

from __future__ import annotations

import io
import zipfile

import pytest

from ingest.nerrs import Nerrs
from lake.storage import Storage
from tests.ingest.support import NERRS, harvest, make_stream, one, rows
from tests.support.http import Reply

EXPORT = NERRS / "gndblwq2021.csv"


def archive(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members:
            z.writestr(name, body)
    return out.getvalue()


def grand_bay(url: str, **source: object):  # type: ignore[no-untyped-def]
    station = {"id": "gndblwq", "lat": 30.3571, "lon": -88.4629, "utc_offset": -6}
    return make_stream(
        "nerrs-gnd",
        {"kind": "nerrs", "url": url, "years": [2021], "zip": "gnd{year}.zip", **source,
         "stations": [station]},
    )  # fmt: skip


def test_zip_archive_over_http_reads_like_the_csv(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/exports/gnd2021.zip"] = Reply(
        archive(("gndblwq2021.csv", EXPORT.read_bytes()), ("gndblnut2021.csv", b"x")),
        content_type="application/zip",
    )
    stream = grand_bay(f"{http_server.url}/exports")
    assert [r.label for r in Nerrs().requests(stream, None, None)] == ["zip 2021"]
    [record] = harvest(storage, stream)
    assert record.status == "ok", record.error
    assert record.url.endswith("/exports/gnd2021.zip")
    # "gndblwq ,P,7/2/2021 0:00,1,1,,30.7,<0> ,...": 0:00 local standard time is 06:00 UTC
    at = "time = timestamp '2021-07-02 06:00:00'"
    temp = one(storage, f"{at} and variable = 'sea_water_temperature'")
    assert temp["value"] == pytest.approx(30.7) and temp["provider_flag"] == "<0>"
    assert temp["station_id"] == "urn:ioos:station:nerrs:gndblwq"
    # the same rows as the CSV harvest reads (tests/ingest/test_nerrs.py)
    csv_storage = Storage.from_settings(local_settings.model_copy(update={"root": str(
        local_settings.root) + "-csv"}))  # fmt: skip
    http_server.routes["/exports/gndblwq2021.csv"] = EXPORT
    [csv_record] = harvest(csv_storage, grand_bay(f"{http_server.url}/exports", zip=None))
    assert csv_record.rows_in == record.rows_in > 0
    # Historical = 1 on every row: CDMO's annual QA/QC is done (rank 2)
    sources = {(r["source"], r["source_rank"]) for r in source_columns(storage)}
    assert sources == {("historical", 2)}


def test_archive_without_the_station_or_broken_is_a_syntax_failure(
    http_server, local_settings
) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/exports/gnd2021.zip"] = Reply(
        archive(("gndblnut2021.csv", EXPORT.read_bytes()[:200])), content_type="application/zip"
    )
    [record] = harvest(storage, grand_bay(f"{http_server.url}/exports"))
    assert record.status == "syntax_failed"
    assert "no CSV of stations ['gndblwq']" in (record.error or "") and "gndblnut2021.csv" in (
        record.error or ""
    )
    cut = archive(("gndblwq2021.csv", EXPORT.read_bytes()))[:5000]  # transfer cut short
    http_server.routes["/exports/gnd2021.zip"] = Reply(cut, content_type="application/zip")
    [broken] = harvest(storage, grand_bay(f"{http_server.url}/exports"), conditional=False)
    assert broken.status == "syntax_failed" and "zip" in (broken.error or "")
    assert rows(storage) == []


def source_columns(storage: Storage) -> list[dict[str, object]]:
    from lake.reader import Lake

    return (
        Lake(storage).sql("select distinct source, source_rank from observations_all").to_pylist()
    )
