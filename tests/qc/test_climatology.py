"""`lake qc climatology build` from >= 2 years of history; the test uses it where it exists."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ioos_qc import qartod

from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.climatology import build_climatology, load_climatology, read_climatology_table
from qc.on_write import qc_before_write
from qc.reprocess import reprocess_series
from tests.qc.support import HUMBOLDT_STATION, HUMBOLDT_VARIABLE, humboldt_rows, make_stream


def rows_of(table: ObservationTable, dataset_id: str) -> pa.Table:
    rows = table.dataset().to_table()
    return rows.filter(pc.equal(rows["dataset_id"], dataset_id))


@pytest.mark.slow
def test_climatology_from_four_years_of_real_history(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    table = ObservationTable(storage)
    stream = make_stream()
    table.write(qc_before_write(storage, stream, humboldt_rows()))  # 2015-08..2019-09
    short = make_stream("humboldt-short")
    table.write(qc_before_write(storage, short, humboldt_rows("humboldt-short", n=2000)))

    built = build_climatology(storage)
    assert set(built["dataset_id"].to_pylist()) == {"humboldt"}  # the short one has < 2 years
    assert sorted(built["month"].to_pylist()) == list(range(1, 13))
    assert min(built["years"].to_pylist()) >= 2
    assert read_climatology_table(storage).equals(built)  # stored in the lake

    # Failing values (qc_agg 4) are left out of the statistics.
    rows = rows_of(table, "humboldt")
    good = rows.filter(pc.not_equal(rows["qc_agg"], 4))
    july = good.filter(pc.equal(pc.month(good["time"]), 7))["value"].to_numpy()
    row = built.filter(pc.equal(built["month"], 7)).to_pylist()[0]
    assert np.isclose(row["mean"], july.mean())
    assert np.isclose(row["vmax"], july.mean() + 3 * july.std())

    # Re-flag the history: the climatology test now runs where ranges exist.
    key = ("humboldt", HUMBOLDT_STATION, HUMBOLDT_VARIABLE, 0.0)
    changed = reprocess_series(key, storage, stream, None, None)
    table.write(changed)
    after = rows_of(table, "humboldt").sort_by("time")
    flags = after["qc_climatology"].to_numpy()
    assert {1, 3} <= set(np.unique(flags).tolist())
    # ... and equals ioos_qc's climatology test with the same monthly ranges.
    config = qartod.ClimatologyConfig()
    for m in load_climatology(storage)[key]:
        config.add(tspan=(m.month, m.month), period="month", vspan=(m.vmin, m.vmax))
    t = after["time"].to_numpy().astype("datetime64[ns]")
    v = after["value"].to_numpy()
    direct = qartod.climatology_test(config=config, inp=v, tinp=t, zinp=np.zeros(len(v)))
    assert np.array_equal(flags, np.ma.filled(direct, 9).astype(np.int8))

    # Where no climatology exists the test says "not evaluated".
    other = reprocess_series(
        ("humboldt-short", HUMBOLDT_STATION, HUMBOLDT_VARIABLE, 0.0), storage, short, None, None
    )
    assert other.num_rows == 0  # nothing changed: still 2
    stored = rows_of(table, "humboldt-short")
    assert set(stored["qc_climatology"].to_pylist()) == {2}
