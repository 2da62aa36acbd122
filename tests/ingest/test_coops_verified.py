"""CO-OPS: each value's `q` (p preliminary, v verified) becomes its source and rank, so a
verified refresh replaces preliminary values; the recorded Seattle January 2015 water levels
are verified."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from ingest.coops import tag_quality
from lake.reader import Lake
from lake.storage import Storage
from tests.ingest.support import COOPS, harvest, make_stream

WATER_LEVEL = (
    COOPS / "api/prod/datagetter/9447130_water_level_metric_201501010000-201501310000.json"
)


def test_verified_water_levels_carry_their_rank(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/api/prod/datagetter"] = WATER_LEVEL
    stream = make_stream(
        "coops-seattle",
        {"kind": "coops", "url": http_server.url, "product": "water_level",
         "stations": ["9447130"], "station_metadata": False},
    )  # fmt: skip
    since, until = datetime(2015, 1, 1, tzinfo=UTC), datetime(2015, 1, 31, tzinfo=UTC)
    [record] = [
        r
        for r in harvest(storage, stream, since=since, until=until)
        if r.label != "9447130 metadata"
    ]
    assert record.status == "ok", record.error
    found = (
        Lake(storage)
        .sql("select source, source_rank, count(*) as n from observations_all group by all")
        .to_pylist()
    )
    assert found == [{"source": "verified", "source_rank": 1, "n": record.rows_added}]


def test_preliminary_and_untagged_values() -> None:
    stream = make_stream("s", {"kind": "coops", "stations": ["1"], "priority": {"verified": 3}})
    rows = pa.table({"provider_flag": ["f=0,0,0,0;q=p;s=0.003", "f=0,0,0,0;q=v;s=0.002", None]})
    tagged = tag_quality(stream, rows)
    assert tagged.column("source").to_pylist() == ["preliminary", "verified", None]
    assert tagged.column("source_rank").to_pylist() == [0, 3, None]  # the stream's rule
    predictions = pa.table({"provider_flag": [None, None]})
    assert tag_quality(stream, predictions).column_names == ["provider_flag"]
