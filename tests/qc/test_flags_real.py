"""On real series, the flags in the lake equal ioos_qc called directly, test by test."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lake.registry import load_registry
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import QC_COLUMNS, ObservationTable
from qc.config import plan_for, threshold_table
from qc.on_write import qc_before_write
from tests.conftest import REPO
from tests.qc.expected import direct_flags
from tests.qc.support import HUMBOLDT_TESTS, humboldt_rows, make_stream

FLAGS = ("qc_agg", *QC_COLUMNS)


def read_series(storage: Storage, dataset_id: str) -> dict[tuple[str, str], pa.Table]:
    rows = ObservationTable(storage).dataset().to_table()
    rows = rows.filter(pa.compute.equal(rows["dataset_id"], dataset_id))
    out = {}
    pairs = zip(rows["station_id"].to_pylist(), rows["variable"].to_pylist(), strict=True)
    for station, variable in set(pairs):
        part = rows.filter(
            (pa.compute.field("station_id") == station) & (pa.compute.field("variable") == variable)
        )
        out[(station, variable)] = part.sort_by("time")
    return out


def columns(series: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        series["time"].to_numpy().astype("datetime64[ns]"),
        series["value"].to_numpy(zero_copy_only=False),
        series["lon"].to_numpy(zero_copy_only=False),
        series["lat"].to_numpy(zero_copy_only=False),
    )


def test_humboldt_series_in_the_lake_equals_ioos_qc(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    stream = make_stream()
    rows = humboldt_rows()
    ObservationTable(storage).write(qc_before_write(storage, stream, rows))

    (series,) = read_series(storage, "humboldt").values()
    assert series.num_rows == rows.num_rows == 89717
    t, v, lon, lat = columns(series)
    # The pinned flat-line interval (cadence 15 min) is this series' median interval, so
    # ioos_qc on the real time axis must agree.
    assert np.median(np.diff(t)).astype("timedelta64[s]").astype(int) == 900
    expected = direct_flags(t, v, lon, lat, {**HUMBOLDT_TESTS, "location": {}})
    for column, flags in expected.items():
        got = series[column].to_numpy()
        assert np.array_equal(got, flags), f"{column}: {np.sum(got != flags)} values differ"
    # Every windowed test really flagged something on this series: the comparison bites.
    for column in ("qc_spike", "qc_rate_of_change", "qc_flat_line", "qc_timing_gap"):
        assert {3, 4} & set(np.unique(series[column].to_numpy()).tolist()), column
    assert set(np.unique(series["qc_climatology"].to_numpy()).tolist()) == {2}  # none built
    assert set(np.unique(series["qc_neighbor"].to_numpy()).tolist()) == {2}  # none configured


@pytest.mark.slow
def test_ndbc_44013_retested_equals_ioos_qc_with_table_thresholds(
    local_settings: Settings,
) -> None:
    """The sample's federal 44013 stream, asked to re-test, through the real harvest path."""
    import inspect

    from coastlake.harvest import harvest_stream, run_harvest

    # The harvest job flags values with qc_before_write unless a test asks otherwise.
    assert inspect.signature(harvest_stream).parameters["qc_step"].default is qc_before_write
    registry = load_registry(REPO / "registry" / "sample.yaml")
    base = registry.get("ndbc-44013-stdmet")
    stream = base.model_copy(update={"qc": base.qc.model_copy(update={"retest_provider": True})})
    storage = Storage.from_settings(local_settings)
    records = run_harvest(storage, registry, [stream], progress=False)
    assert records and all(r.status in ("ok", "unchanged") for r in records)

    table = threshold_table()
    compared = 0
    for (station, variable), series in read_series(storage, stream.id).items():
        plan = plan_for(stream, station, variable)
        tests = {k: dict(v) for k, v in plan.tests.items() if k in table.get(variable, {})}
        tests["timing_gap"] = plan.tests["timing_gap"]
        tests["location"] = {}
        t, v, lon, lat = columns(series)
        expected = direct_flags(t, v, lon, lat, tests)
        for column, flags in expected.items():
            got = series[column].to_numpy()
            assert np.array_equal(got, flags), f"{variable} {column}: {np.sum(got != flags)} differ"
            compared += 1
    assert compared >= 50  # 12 variables, four to eight flag columns each


def test_federal_stream_keeps_provider_flags_and_is_not_retested(local_settings: Settings) -> None:
    storage = Storage.from_settings(local_settings)
    stream = make_stream("federal-humboldt", category="federal")
    rows = humboldt_rows("federal-humboldt", n=500)
    flags = ["4" if i % 100 == 7 else None for i in range(rows.num_rows)]
    at = rows.schema.get_field_index("provider_flag")
    rows = rows.set_column(at, "provider_flag", pa.array(flags, pa.string()))
    ObservationTable(storage).write(qc_before_write(storage, stream, rows))
    (series,) = read_series(storage, "federal-humboldt").values()
    assert set(series["qc_syntax"].to_pylist()) == {1}
    # Gross range runs on federal streams too (limits from the threshold table); the rest
    # of the suite does not.
    assert set(series["qc_gross_range"].to_pylist()) <= {1, 3, 4}
    for column in QC_COLUMNS[1:]:
        if column != "qc_gross_range":
            assert set(series[column].to_pylist()) == {2}, column
    # The provider's own QARTOD flag is kept and decides the aggregate where it fails a value.
    failed = [f == "4" for f in series["provider_flag"].to_pylist()]
    assert sum(failed) == 5
    assert [a == 4 for a in series["qc_agg"].to_pylist()] == [
        f or g == 4 for f, g in zip(failed, series["qc_gross_range"].to_pylist(), strict=True)
    ]
    # Pass only where gross range passed: the aggregate never claims more than was tested.
    for agg, gross in zip(
        series["qc_agg"].to_pylist(), series["qc_gross_range"].to_pylist(), strict=True
    ):
        assert agg != 1 or gross == 1


@pytest.mark.s3
def test_live_flags_on_s3_equal_local(s3_settings: Settings, local_settings: Settings) -> None:
    stream = make_stream()
    rows = humboldt_rows(n=3000)
    got = []
    for settings in (s3_settings, local_settings):
        storage = Storage.from_settings(settings)
        ObservationTable(storage).write(qc_before_write(storage, stream, rows.slice(0, 1500)))
        ObservationTable(storage).write(qc_before_write(storage, stream, rows.slice(1500)))
        (series,) = read_series(storage, "humboldt").values()
        got.append(series.select(["time", *FLAGS]))
    assert got[0].equals(got[1])
