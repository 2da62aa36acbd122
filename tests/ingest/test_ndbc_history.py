"""NDBC's quality-controlled history: which file holds a window, the current year's monthly
files over real HTTP, and history replacing provisional real-time values by source rank.

The recorded monthly file (TPLM2, January 2022) is served at NDBC's monthly URL; for the
replacement test the same bytes are also served as the real-time file (what the buoy sent
in real time) and as the 2022 yearly file (whose January holds the same values)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from ingest.ndbc import NdbcFile, NdbcRealtime, plan_files
from lake.tables import ObservationTable
from tests.ingest.support import NDBC, data_records, harvest, make_stream, rows

MONTHLY = NDBC / "data/stdmet/Jan/tplm212022.txt"
MONTHLY_PATH = "/view_text_file.php?filename=tplm212022.txt.gz&dir=data/stdmet/Jan/"
YEARLY_2022_PATH = "/view_text_file.php?filename=tplm2h2022.txt.gz&dir=data/historical/stdmet/"
NOW = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)


def test_plan_covers_a_window_with_the_files_that_hold_it() -> None:
    # Inside this year, older than the real-time file's 45 days: September and October.
    assert plan_files(datetime(2026, 9, 4), datetime(2026, 10, 14), NOW) == [
        NdbcFile("monthly", 2026, 9),
        NdbcFile("monthly", 2026, 10),
    ]
    # From last summer to now: the real-time file, every finished month, last year's file.
    files = plan_files(datetime(2025, 6, 1), None, NOW)
    assert files[0] == NdbcFile("realtime2")
    assert [f.month for f in files if f.product == "monthly"] == list(range(1, 12))
    assert [f.year for f in files if f.product == "yearly"] == [2025]
    # The last ten days: the real-time file, and November's file once NDBC publishes it.
    assert plan_files(datetime(2026, 11, 23), None, NOW) == [
        NdbcFile("realtime2"),
        NdbcFile("monthly", 2026, 11),
    ]
    # In January last year's yearly file is not out yet: its months are asked too.
    assert plan_files(datetime(2026, 11, 1), None, datetime(2027, 1, 20, tzinfo=UTC)) == [
        NdbcFile("realtime2"),
        NdbcFile("monthly", 2026, 11),
        NdbcFile("monthly", 2026, 12),
        NdbcFile("yearly", 2026),
    ]
    # In the autumn, last year is in its yearly file only.
    assert NdbcFile("monthly", 2025, 12) not in plan_files(datetime(2025, 12, 1), None, NOW)
    # A poll: the real-time file only; the registry's months and years always.
    assert plan_files(None, None, NOW) == [NdbcFile("realtime2")]
    assert plan_files(None, None, NOW, months=[(2022, 1)], years=[2021]) == [
        NdbcFile("realtime2"),
        NdbcFile("monthly", 2022, 1),
        NdbcFile("yearly", 2021),
    ]


def test_monthly_request_at_ndbc_url_and_label() -> None:
    stream = make_stream(
        "tplm2", {"kind": "ndbc", "url": "https://www.ndbc.noaa.gov", "stations": ["TPLM2"]}
    )
    url = NdbcFile("monthly", 2026, 10).url("https://www.ndbc.noaa.gov", "TPLM2", "txt", "stdmet")
    assert url.endswith("view_text_file.php?filename=tplm2a2026.txt.gz&dir=data/stdmet/Oct/")
    assert NdbcFile("monthly", 2026, 10).label("TPLM2") == "TPLM2 monthly 2026-10"
    bad = make_stream("bad", {**stream.source.model_dump(), "months": ["2026-13"]})
    with pytest.raises(Exception, match="month '2026-13' is not YYYY-MM"):
        NdbcRealtime().requests(bad, None, None)


def test_monthly_file_over_http_and_the_log_says_which_file(http_server, local_settings) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes[MONTHLY_PATH] = MONTHLY
    http_server.routes["/data/realtime2/TPLM2.cwind"] = NDBC / "data/realtime2/TPLM2.cwind"
    stream = make_stream(
        "tplm2-wind",
        {
            "kind": "ndbc",
            "url": http_server.url,
            "file": "cwind",
            "history": "stdmet",
            "months": ["2022-01"],
            "stations": ["TPLM2"],
            "station_metadata": False,
        },
    )
    records = data_records(harvest(storage, stream))
    assert [(r.label, r.status) for r in records] == [
        ("TPLM2 realtime2", "ok"),
        ("TPLM2 monthly 2022-01", "ok"),
    ], records
    assert records[1].url.endswith(MONTHLY_PATH) and records[1].rows_added > 0
    # "2022 01 31 23 00  30  5.6  6.2 ...": the month's last hour, from the monthly file
    [last] = rows(storage, "variable = 'wind_speed' and time = timestamp '2022-01-31 23:00:00'")
    assert last["value"] == pytest.approx(5.6)
    january = rows(storage, "variable = 'wind_speed' and month(time) = 1")
    assert len(january) == records[1].rows_added // 3  # WDIR, WSPD, GST per hour
    assert {r["time"].day for r in january} == set(range(1, 32))
    sources = sources_of(storage)
    assert sources["monthly"] == records[1].rows_added
    assert sources["realtime2"] == records[0].rows_added


def test_unpublished_month_is_no_data_not_a_failure(http_server, local_settings) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/TPLM2.cwind"] = NDBC / "data/realtime2/TPLM2.cwind"
    stream = make_stream(
        "tplm2-wind",
        {
            "kind": "ndbc",
            "url": http_server.url,
            "file": "cwind",
            "history": "stdmet",
            "months": ["2022-02"],  # not served: NDBC has not published it
            "stations": ["TPLM2"],
        },
    )
    records = data_records(harvest(storage, stream))
    assert [(r.label, r.status, r.rows_added) for r in records][1] == (
        "TPLM2 monthly 2022-02",
        "ok",
        0,
    )


def test_history_replaces_provisional_values_and_keeps_one_row_per_key(
    http_server, local_settings
) -> None:
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/TPLM2.txt"] = MONTHLY
    http_server.routes[YEARLY_2022_PATH] = MONTHLY
    stream = make_stream(
        "tplm2-stdmet",
        {"kind": "ndbc", "url": http_server.url, "stations": ["TPLM2"], "station_metadata": False},
    )
    [realtime] = data_records(harvest(storage, stream))
    assert realtime.status == "ok" and realtime.rows_added > 0
    assert sources_of(storage) == {"realtime2": realtime.rows_added}
    # The history refresh: January 2022 from the yearly file replaces every real-time value.
    since, until = datetime(2022, 1, 1), datetime(2022, 1, 31, 23)
    [yearly] = data_records(harvest(storage, stream, since=since, until=until))
    assert yearly.label == "TPLM2 yearly 2022" and yearly.status == "ok", yearly.error
    assert sources_of(storage) == {"yearly": realtime.rows_added}
    keys = rows(storage)
    assert len(keys) == realtime.rows_added  # one row per key, not two
    assert {r["raw_id"] for r in keys} == {yearly.raw_id}
    # A provisional value arriving later never undoes the history (source rank, not
    # ingest time): written straight to the table, it changes nothing.
    table = ObservationTable(storage)
    stored = table.dataset().to_table()
    provisional = stored.set_column(
        stored.schema.get_field_index("source"),
        "source",
        pa.array(["realtime2"] * stored.num_rows, pa.string()),
    ).set_column(
        stored.schema.get_field_index("source_rank"),
        "source_rank",
        pa.array([0] * stored.num_rows, pa.int8()),
    )
    result = table.write(provisional.drop_columns(["year", "month"]))
    assert result.updated == 0
    assert sources_of(storage) == {"yearly": realtime.rows_added}
    # An equal rank still updates (a re-issued yearly file), so a rule can be overridden.
    reissued = provisional.set_column(
        provisional.schema.get_field_index("source_rank"),
        "source_rank",
        pa.array([2] * stored.num_rows, pa.int8()),
    )
    assert table.write(reissued.drop_columns(["year", "month"])).updated == stored.num_rows


def test_stream_priority_rule_overrides_the_default(http_server, local_settings) -> None:
    """A stream whose real-time values are final says so: `priority: {realtime2: 2}`; its
    real-time rows then carry rank 2 and the yearly file (rank 2) replaces them only as an
    equal."""
    from lake.storage import Storage

    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/TPLM2.txt"] = MONTHLY
    stream = make_stream(
        "tplm2-stdmet",
        {
            "kind": "ndbc",
            "url": http_server.url,
            "stations": ["TPLM2"],
            "station_metadata": False,
            "priority": {"realtime2": 2},
        },
    )
    [record] = data_records(harvest(storage, stream))
    assert record.status == "ok"
    ranks = ObservationTable(storage).dataset().to_table(columns=["source_rank"])
    assert set(ranks.column("source_rank").to_pylist()) == {2}


def sources_of(storage: object) -> dict[str, int]:
    from lake.reader import Lake

    found = Lake(storage).sql(  # type: ignore[arg-type]
        "select source, count(*) as n from observations_all group by source"
    )
    return {r["source"]: r["n"] for r in found.to_pylist()}


def test_the_rule_is_the_kinds_defaults_then_the_streams() -> None:
    from ingest.kinds import source_priority

    plain = make_stream("a", {"kind": "ndbc", "stations": ["TPLM2"]})
    assert source_priority(plain) == {"realtime2": 0, "monthly": 1, "yearly": 2, "upload": 1}
    final = make_stream("b", {"kind": "ndbc", "stations": ["X"], "priority": {"realtime2": 2}})
    assert source_priority(final)["realtime2"] == 2
