"""History refresh on a schedule: a stream's rule, when it is due, and a refresh run over
real HTTP that asks NDBC for the quality-controlled files of its window and is logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coastlake.history import run_refreshes
from ingest.history import REFRESH_LABEL, refresh_rule, refreshes_due
from ingest.ndbc import NdbcRealtime
from lake.errors import ConfigError
from lake.harvest_log import HarvestLog
from lake.registry import Registry
from lake.settings import Settings
from lake.storage import Storage
from tests.ingest.support import NDBC, make_stream


def ndbc_stream(url: str, **source: object):  # type: ignore[no-untyped-def]
    return make_stream(
        "tplm2-wind",
        {
            "kind": "ndbc",
            "url": url,
            "file": "cwind",
            "history": "stdmet",
            "stations": ["TPLM2"],
            "station_metadata": False,
            **source,
        },
    )


def test_rule_is_checked_when_read() -> None:
    assert refresh_rule(ndbc_stream("https://x")) is None
    rule = refresh_rule(ndbc_stream("https://x", refresh={"every": "7d", "back": "120d"}))
    assert rule is not None and (rule.every, rule.back) == (timedelta(days=7), timedelta(days=120))
    with pytest.raises(ConfigError, match="needs 'every' and 'back'"):
        refresh_rule(ndbc_stream("https://x", refresh={"every": "7d"}))
    with pytest.raises(ConfigError, match=r"source\.refresh.*expected a duration"):
        refresh_rule(ndbc_stream("https://x", refresh={"every": "weekly", "back": "1d"}))


def test_a_bad_rule_skips_that_stream_only(local_settings) -> None:
    storage = Storage.from_settings(local_settings)
    bad = ndbc_stream("https://x", refresh={"every": "weekly", "back": "1d"})
    good = make_stream(
        "other", {"kind": "ndbc", "stations": ["X"], "refresh": {"every": "1d", "back": "2d"}}
    )
    assert [r.stream.id for r in refreshes_due(storage, [bad, good])] == ["other"]


def test_refresh_is_due_by_its_own_schedule_and_fetches_the_qcd_files(
    http_server, local_settings
) -> None:
    storage = Storage.from_settings(local_settings)
    http_server.routes["/data/realtime2/TPLM2.cwind"] = NDBC / "data/realtime2/TPLM2.cwind"
    stream = ndbc_stream(http_server.url, refresh={"every": "7d", "back": "60d"})
    plain = ndbc_stream(http_server.url)  # no rule: never refreshed
    now = datetime.now(UTC)
    [due] = refreshes_due(storage, [stream, plain], now)
    assert due.stream is stream and (due.since, due.until) == (now - timedelta(days=60), now)

    records = run_refreshes(storage, Registry(streams=[stream]), [due], progress=False)
    # The window's files as NDBC serves them now: the real-time file and the finished
    # months (not yet published here: no data, not a failure)
    wanted = NdbcRealtime().requests(stream, due.since, due.until)
    assert any("monthly" in r.label for r in wanted)
    asked = {path for path, _ in http_server.hits}
    for request in wanted:
        assert request.url.removeprefix(http_server.url) in asked
    summary = records[-1]
    assert summary.label == REFRESH_LABEL and summary.status == "ok", summary.error
    logged = [r for r in HarvestLog(storage).latest() if r.label == REFRESH_LABEL]
    assert [r.stream_id for r in logged] == ["tplm2-wind"]
    # Not due again until a week has passed.
    assert refreshes_due(storage, [stream], datetime.now(UTC)) == []
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    assert [r.stream.id for r in refreshes_due(storage, [stream], later)] == ["tplm2-wind"]


def test_a_failed_refresh_names_its_window(http_server, local_settings) -> None:
    storage = Storage.from_settings(local_settings)  # nothing served: the real-time file 404s
    stream = ndbc_stream(http_server.url, refresh={"every": "1d", "back": "10d"})
    [due] = refreshes_due(storage, [stream])
    summary = run_refreshes(storage, Registry(streams=[stream]), [due], progress=False)[-1]
    assert summary.status == "failed"
    assert f"window {due.since:%Y-%m-%d %H:%M}" in (summary.error or "")
    assert "requests failed" in (summary.error or "")


def test_watch_runs_the_refresh_each_round(local_settings) -> None:
    from ingest.schedule import watch

    storage = Storage.from_settings(local_settings)
    stream = ndbc_stream("https://x", refresh={"every": "1d", "back": "2d"})
    calls: list[int] = []
    rounds = watch(
        storage,
        [stream],
        lambda due: [],
        refresh=lambda: calls.append(1),
        max_rounds=2,
    )
    assert rounds == 2 and len(calls) == 2


def test_lake_harvest_runs_a_due_refresh_once(tmp_path: Path) -> None:
    """The command line: `lake harvest` runs the due refresh (and the poll); run again at
    once, neither is due."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    registry = tmp_path / "registry.yaml"
    data = (REPO / "registry" / "data" / "www.ndbc.noaa.gov").as_posix()
    registry.write_text(
        "streams:\n"
        "  - id: tplm2-wind\n"
        "    title: Thomas Point winds\n"
        "    provider: {name: NDBC}\n"
        "    category: federal\n"
        f"    source: {{kind: ndbc, url: 'file://{data}', file: cwind, history: stdmet,\n"
        "             stations: [TPLM2], refresh: {every: 7d, back: 45d}}\n"
        "    cadence: 1h\n"
    )
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake"), "LAKE_REGISTRY": str(registry)}
    lake = str(Path(sys.executable).parent / "lake")

    def harvest_cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [lake, "harvest"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )

    first = harvest_cli()
    assert first.returncode == 0, first.stderr
    storage = Storage.from_settings(Settings(root=str(tmp_path / "lake"), registry=str(registry)))
    log = HarvestLog(storage).read().to_pylist()
    assert [r["label"] for r in log].count(REFRESH_LABEL) == 1
    # 45 days always reach last month: its monthly file was asked (absent offline: no data)
    assert any(r["label"].startswith("TPLM2 monthly") and r["status"] == "ok" for r in log)
    second = harvest_cli()
    assert second.returncode == 0 and "nothing is due" in second.stderr
