"""Failed values stay in the lake with their flags and are masked from what is served."""

from __future__ import annotations

import numpy as np

from lake.reader import Lake
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from qc.on_write import qc_before_write
from tests.qc.support import HUMBOLDT_STATION, humboldt_rows, make_stream


def test_gross_range_failures_are_kept_but_not_served(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    rows = humboldt_rows(n=800)
    stream = make_stream(stations={"20363": {"gross_range": {"fail_span": [9, 2100]}}})
    ObservationTable(storage).write(qc_before_write(storage, stream, rows))
    lk = Lake(storage)
    values = rows["value"].to_numpy()
    out_of_span = int(((values < 9) | (values > 2100)).sum())  # the station's fail span
    assert out_of_span > 0
    failed = lk.sql("SELECT count(*) AS n FROM observations_all WHERE qc_gross_range = 4")
    assert failed["n"][0].as_py() == out_of_span
    served = lk.sql(
        "SELECT count(*) AS n, count(value) AS shown FROM observations WHERE qc_agg = 4"
    )
    assert served["n"][0].as_py() >= out_of_span and served["shown"][0].as_py() == 0
    kept = lk.sql("SELECT count(value) AS n FROM observations_all WHERE qc_agg = 4")
    assert kept["n"][0].as_py() == served["n"][0].as_py()  # still stored, with the flag
    default = lk.series("humboldt", HUMBOLDT_STATION)
    everything = lk.series("humboldt", HUMBOLDT_STATION, include_flagged=True)
    name = "unknown_parameter_1000427"
    assert int(np.isnan(default[name].values).sum()) == served["n"][0].as_py()
    assert not np.isnan(everything[name].values).any()
    assert set(np.unique(everything[f"{name}_qc_agg"].values)) <= {1, 2, 3, 4, 9}
