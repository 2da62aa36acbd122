"""The stream registry: the sample validates; each kind of mistake names file, stream, field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from lake.errors import ConfigError
from lake.registry import Category, load_registry, parse_duration
from lake.settings import SAMPLE_REGISTRY

GOOD_STREAM = {
    "id": "ndbc-44013-stdmet",
    "title": "NDBC 44013",
    "provider": {"name": "NDBC"},
    "category": "federal",
    "source": {"kind": "ndbc", "url": "data", "stations": ["44013"]},
    "cadence": "10min",
}


def write(tmp_path: Path, streams: list[dict]) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"streams": streams}))
    return path


def test_sample_registry_validates() -> None:
    registry = load_registry(SAMPLE_REGISTRY)
    assert "ndbc-44013-stdmet" in registry.ids()
    stream = registry.get("ndbc-44013-stdmet")
    assert stream.cadence == timedelta(minutes=10)
    # A relative source url is resolved against the registry's folder.
    assert stream.source.url is not None
    assert stream.source.url.startswith("file://")
    assert stream.source.url.endswith("registry/data/www.ndbc.noaa.gov")


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"category": "federl"}, "category", "federal"),
        ({"cadence": "every so often"}, "cadence", "duration"),
        ({"colour": "blue"}, "colour", "not a known field"),
        ({"id": "Bad Id!"}, "id", "pattern"),
        ({"provider": {"url": "x"}}, "provider.name", "required"),
    ],
)
def test_mistake_names_file_stream_and_field(
    tmp_path: Path, change: dict, field: str, expected: str
) -> None:
    path = write(tmp_path, [GOOD_STREAM, {**GOOD_STREAM, "id": "second-stream", **change}])
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    message = str(info.value)
    assert str(path) in message
    stream_name = change.get("id", "second-stream")
    assert repr(stream_name) in message
    assert f"field {field!r}" in message
    assert expected in message
    assert info.value.field == field


def test_missing_required_field(tmp_path: Path) -> None:
    stream = {k: v for k, v in GOOD_STREAM.items() if k != "category"}
    with pytest.raises(ConfigError, match=r"stream 'ndbc-44013-stdmet', field 'category'"):
        load_registry(write(tmp_path, [stream]))


def test_regional_stream_needs_a_data_stream_plan(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Data Stream Plan") as info:
        load_registry(write(tmp_path, [{**GOOD_STREAM, "category": "regional"}]))
    assert info.value.stream == "ndbc-44013-stdmet"
    ok = load_registry(
        write(
            tmp_path,
            [
                {
                    **GOOD_STREAM,
                    "category": "regional",
                    "data_stream_plan": "https://example.org/dsp",
                }
            ],
        )
    )
    assert ok.streams[0].category is Category.regional


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        load_registry(write(tmp_path, [GOOD_STREAM, GOOD_STREAM]))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("streams: [\n  - id: x\n  title: : :")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_registry(bad)
    assert info.value.file == str(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_registry(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("just: text\n")
    with pytest.raises(ConfigError, match="'streams:' list"):
        load_registry(empty)


def test_durations() -> None:
    assert parse_duration("6min") == timedelta(minutes=6)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_categories_decide_plan_and_qc_path() -> None:
    assert Category.funded.needs_stream_plan and Category.regional.needs_stream_plan
    assert not Category.federal.needs_stream_plan and not Category.model.needs_stream_plan
    assert "full QARTOD" in Category.funded.qc_path
    assert "provider" in Category.federal.qc_path
