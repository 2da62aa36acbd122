"""`lake vacuum` says what it really removed: files deleted count once, files the Delta log
still names but that are gone already are told apart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lake.maintenance import vacuum
from lake.settings import Settings
from lake.storage import Storage
from lake.tables import ObservationTable
from tests.lake.tables_support import real_rows


def table_files(root: Path) -> set[str]:
    base = root / "tables" / "observations"
    return {
        str(p.relative_to(base)) for p in base.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def test_vacuum_reports_what_it_removed(tmp_path: Path) -> None:
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake")))
    table = ObservationTable(storage)
    rows = real_rows()
    for start in range(0, 4000, 1000):
        table.write(rows.slice(start, 1000))
    assert table.compact(min_files=2) >= 1
    live = {Path(u).name for u in table.delta().file_uris()}
    replaced = sorted(f for f in table_files(tmp_path / "lake") if Path(f).name not in live)
    assert len(replaced) >= 2
    # One replaced file removed by hand: Delta still names it, but no vacuum can remove it.
    gone = replaced[0]
    (tmp_path / "lake" / "tables" / "observations" / gone).unlink()

    report = vacuum(table, timedelta(0))
    assert sorted(report.removed) == replaced[1:]
    assert report.already_gone == [gone]
    assert report.still_there == []
    assert not set(replaced) & table_files(tmp_path / "lake")
    assert f"removed {len(replaced) - 1} files" in report.summary(0)

    again = vacuum(table, timedelta(0))
    assert again.removed == [] and again.still_there == []
    assert again.summary(0).startswith("removed 0 files")
    assert table.dataset().to_table().num_rows == 4000
