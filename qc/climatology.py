"""Per-station, per-month expected ranges derived from the lake's own history.

`build_climatology` needs at least two years of a series (and values from two different
years in a month) before it trusts a month; the climatology test flags 2 (not evaluated)
where no range exists. The ranges live in the lake at `<root>/qc/climatology.parquet`,
written atomically, so a reader sees the old set or the new one.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake.flags import FAIL
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.runner import MonthRange, SeriesKey

log = logging.getLogger(__name__)

#: A series must span this long before it gets a climatology (the issue: two years).
MIN_SPAN_DAYS = 730
#: Each month needs values from this many different years.
MIN_YEARS_PER_MONTH = 2
#: Expected range: mean +/- this many standard deviations of that month's values.
SIGMAS = 3.0

CLIMATOLOGY_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string()),
        pa.field("station_id", pa.string()),
        pa.field("variable", pa.string()),
        pa.field("z", pa.float64()),
        pa.field("month", pa.int8()),
        pa.field("vmin", pa.float64()),
        pa.field("vmax", pa.float64()),
        pa.field("mean", pa.float64()),
        pa.field("std", pa.float64()),
        pa.field("count", pa.int64()),
        pa.field("years", pa.int32()),
        pa.field("built_at", pa.timestamp("us")),
    ]
)


def climatology_url(storage: Storage) -> str:
    return storage.url("qc", "climatology.parquet")


def build_climatology(storage: Storage, dataset_ids: list[str] | None = None) -> pa.Table:
    """Derive and store monthly ranges for every series with two years of history.

    Values already flagged as failing (qc_agg FAIL) are left out, so a broken sensor does not
    widen its own expected range. Returns the stored table (also for series without enough
    history: none of their rows are in it).
    """
    dataset = ObservationTable(storage).dataset()
    flt = pc.field("qc_agg").is_null() | (pc.field("qc_agg") != FAIL)
    rows = dataset.to_table(
        columns=["dataset_id", "station_id", "variable", "z", "time", "value"], filter=flt
    )
    if dataset_ids:  # matched after the scan: see qc.context.series_filter
        rows = rows.filter(pc.is_in(rows.column("dataset_id"), pa.array(dataset_ids)))
    rows = rows.filter(pc.invert(pc.is_null(rows.column("value"))))
    keys = ["dataset_id", "station_id", "variable", "z"]
    span = rows.group_by(keys).aggregate([("time", "min"), ("time", "max")])
    long_enough = set()
    for r in span.to_pylist():
        if (r["time_max"] - r["time_min"]).days >= MIN_SPAN_DAYS:
            long_enough.add((r["dataset_id"], r["station_id"], r["variable"], float(r["z"])))
    monthly = (
        rows.append_column("month", pc.month(rows.column("time")).cast(pa.int8()))
        .append_column("yr", pc.year(rows.column("time")))
        .group_by([*keys, "month"])
        .aggregate(
            [
                ("value", "mean"),
                ("value", "stddev"),
                ("value", "count"),
                ("yr", "count_distinct"),
            ]
        )
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    for r in monthly.to_pylist():
        key = (r["dataset_id"], r["station_id"], r["variable"], float(r["z"]))
        if key not in long_enough or r["yr_count_distinct"] < MIN_YEARS_PER_MONTH:
            continue
        mean, std = float(r["value_mean"]), float(r["value_stddev"] or 0.0)
        out.append(
            {
                **dict(zip(keys, key, strict=True)),
                "month": r["month"],
                "vmin": mean - SIGMAS * std,
                "vmax": mean + SIGMAS * std,
                "mean": mean,
                "std": std,
                "count": r["value_count"],
                "years": r["yr_count_distinct"],
                "built_at": now,
            }
        )
    table = pa.Table.from_pylist(out, schema=CLIMATOLOGY_SCHEMA).sort_by(
        [(k, "ascending") for k in (*keys, "month")]
    )
    if dataset_ids:
        kept = read_climatology_table(storage)
        kept = kept.filter(pc.invert(pc.field("dataset_id").isin(dataset_ids)))
        table = pa.concat_tables([kept, table])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    storage.write_bytes(climatology_url(storage), buffer.getvalue())
    log.info(
        "climatology built: %d monthly ranges for %d series (of %d) with >= 2 years of history",
        table.num_rows,
        len({tuple(r[k] for k in keys) for r in out}),
        span.num_rows,
    )
    return table


def read_climatology_table(storage: Storage) -> pa.Table:
    """The stored monthly ranges (empty if none were built yet)."""
    url = climatology_url(storage)
    if not storage.exists(url):
        return CLIMATOLOGY_SCHEMA.empty_table()
    return pq.read_table(io.BytesIO(storage.read_bytes(url)))


def load_climatology(storage: Storage) -> dict[SeriesKey, list[MonthRange]]:
    """Monthly ranges by series key, for the runner."""
    out: dict[SeriesKey, list[MonthRange]] = defaultdict(list)
    for r in read_climatology_table(storage).to_pylist():
        key = (r["dataset_id"], r["station_id"], r["variable"], float(r["z"]))
        out[key].append(MonthRange(int(r["month"]), float(r["vmin"]), float(r["vmax"])))
    return dict(out)
