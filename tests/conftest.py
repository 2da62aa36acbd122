"""Shared fixtures: real files, a local HTTP server, moto's S3 server, a lake per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lake.settings import Settings
from lake.storage import Storage
from tests.support.http import RecordedServer
from tests.support.s3 import MotoServer

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE_DATA = REPO / "registry" / "data"


@pytest.fixture
def http_server() -> Iterator[RecordedServer]:
    server = RecordedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(moto: MotoServer) -> Settings:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    # By the variables' names (the settings' aliases), as the environment gives them.
    return Settings.model_validate(
        {
            "root": f"s3://{bucket}/lake",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": moto.endpoint,
        }
    )


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    return Settings(root=str(tmp_path / "lake"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def any_settings(request: pytest.FixtureRequest) -> Settings:
    """Run a test on a local folder and again on S3 (moto on 127.0.0.1)."""
    if request.param == "local":
        return request.getfixturevalue("local_settings")
    return request.getfixturevalue("s3_settings")


@pytest.fixture
def storage(any_settings: Settings) -> Storage:
    return Storage.from_settings(any_settings)
