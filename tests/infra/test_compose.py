"""infra/compose.yaml: valid against the Compose specification's schema (what `docker compose
config` checks first; no docker daemon or compose plugin here), and consistent with the image,
the settings the code reads, and its own start order."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from lake.settings import Settings
from tests.infra.deploy import (
    DATA,
    INFRA,
    REPO,
    command_problems,
    read_env_file,
    settings_env_names,
)

COMPOSE = INFRA / "compose.yaml"
SCHEMA = DATA / "compose-schema" / "compose-spec.json"
IMAGE_SETTING = "${COASTLAKE_IMAGE:-coastlake:dev}"
#: `${NAME:-default}` or `${NAME}` in a compose value.
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def compose() -> dict[str, Any]:
    # safe_load resolves the `<<: *coastlake` merge keys, as compose does.
    with COMPOSE.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


def schema_errors(doc: dict[str, Any]) -> list[str]:
    # Draft 7, as the schema's README says (its $schema URL lacks the '#' jsonschema knows).
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    )


def with_defaults(value: str) -> str:
    """A compose value as it is with no variable set: each `${NAME:-default}` its default."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def coastlake_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from infra/Dockerfile."""
    return {name: s for name, s in doc["services"].items() if "build" in s}


def as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else value.split()


def env_files(service: dict[str, Any]) -> list[Path]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, str) else files
    return [INFRA / with_defaults(f if isinstance(f, str) else f["path"]) for f in files]


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    doc = compose()
    assert schema_errors(doc) == []
    assert {"minio", "make-bucket", "lake-init", "scheduler", "worker", "server", "harvester"} <= (
        set(doc["services"])
    )


def test_the_schema_check_refuses_what_compose_would_refuse() -> None:
    # The check can fail: a misspelt wait condition and an unknown service key are refused.
    doc = copy.deepcopy(compose())
    doc["services"]["server"]["depends_on"]["make-bucket"]["condition"] = "service_done"
    doc["services"]["harvester"]["restart_policy"] = "on-failure"
    errors = schema_errors(doc)
    assert any(e.startswith("services/server/depends_on") for e in errors), errors
    assert any("restart_policy" in e for e in errors), errors


def test_one_image_setting_and_pinned_third_party_images() -> None:
    doc = compose()
    ours = coastlake_services(doc)
    assert set(ours) == {"lake-init", "scheduler", "worker", "server", "harvester"}
    for name, service in ours.items():
        assert service["image"] == IMAGE_SETTING, name
        build = service["build"]
        dockerfile = (INFRA / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == INFRA / "Dockerfile", name
    for name, service in doc["services"].items():
        image = with_defaults(service["image"])
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image} floats"


@pytest.mark.slow
def test_every_command_runs_a_program_the_image_has() -> None:
    # Each command (and health check) of a service of our image names a console script of
    # a package the image installs (`lake`, `dask`) or the base image's python, with a
    # subcommand and options that program's --help declares.
    problems: list[str] = []
    for name, service in coastlake_services(compose()).items():
        problems += command_problems(as_list(service["command"]), f"{name} command")
        check = service.get("healthcheck", {})
        if not check.get("disable"):
            assert check["test"][0] == "CMD", name
            problems += command_problems(check["test"][1:], f"{name} healthcheck")
    assert problems == []
    # and the check is not blind: a misspelt option and a missing program are caught.
    assert command_problems(["lake", "harvest", "--wach"], "x") != []
    assert command_problems(["dask", "worker", "tcp://s:8786", "--nthread", "2"], "x") != []
    assert command_problems(["curl", "-f", "http://127.0.0.1:8000/healthz"], "x") != []


def test_env_examples_name_only_settings_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    known = settings_env_names()
    env = read_env_file(INFRA / "lake.env.example")
    unknown = sorted(set(env) - known)
    assert unknown == [], f"lake.env.example names settings no code reads: {unknown}"
    assert {"LAKE_ROOT", "LAKE_DASK_SCHEDULER", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"} <= set(env)
    # The settings object reads each value from the environment as written.
    for name in known:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.root == env["LAKE_ROOT"] and settings.is_s3
    assert settings.dask_scheduler == env["LAKE_DASK_SCHEDULER"]
    assert settings.aws_endpoint_url == env["AWS_ENDPOINT_URL"]
    assert settings.aws_access_key_id == env["AWS_ACCESS_KEY_ID"]
    assert settings.admin_token == env["LAKE_ADMIN_TOKEN"]
    assert Path(settings.registry) == Path("/app/registry/sample.yaml")
    assert (REPO / "registry" / "sample.yaml").exists()  # the image's /app is the repository


def test_settings_name_the_services_of_the_compose_file() -> None:
    doc = compose()
    env = read_env_file(INFRA / "lake.env.example")
    minio_env = read_env_file(INFRA / "minio.env.example")
    # The lake's key pair is MinIO's root user, and its endpoint the minio service.
    assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
    endpoint = urlparse(env["AWS_ENDPOINT_URL"])
    assert endpoint.hostname in doc["services"] and endpoint.port == 9000
    assert "server" in doc["services"]["minio"]["command"]
    # The scheduler address is the scheduler service on the port it listens on, and the
    # workers connect to the same.
    scheduler = urlparse(env["LAKE_DASK_SCHEDULER"])
    command = as_list(doc["services"]["scheduler"]["command"])
    assert scheduler.hostname == "scheduler"
    assert command[command.index("--port") + 1] == str(scheduler.port)
    assert env["LAKE_DASK_SCHEDULER"] in as_list(doc["services"]["worker"]["command"])


def test_env_files_named_by_default_exist_and_lake_services_read_the_settings() -> None:
    doc = compose()
    for name, service in doc["services"].items():
        for path in env_files(service):
            assert path.is_file(), f"{name}: env file {path} missing"
    for name, service in coastlake_services(doc).items():
        assert INFRA / "lake.env.example" in env_files(service), name


def test_lake_services_wait_for_the_store_the_bucket_and_the_tables() -> None:
    services = compose()["services"]
    for name, service in services.items():
        deps = service.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on as a list waits for nothing"
        for dep, how in deps.items():
            other = services[dep]
            if how["condition"] == "service_healthy":
                assert "healthcheck" in other and not other["healthcheck"].get("disable"), (
                    f"{name} waits for {dep} to be healthy, which has no health check"
                )
            elif how["condition"] == "service_completed_successfully":
                assert other.get("restart") == "no", f"{dep} runs once, so must not restart"
            else:
                raise AssertionError(f"{name}: {dep} is waited for only until it starts")
    lake_users = set(coastlake_services(compose())) - {"scheduler"}
    for name in lake_users:
        deps = services[name]["depends_on"]
        assert deps["minio"]["condition"] == "service_healthy", name
        assert deps["make-bucket"]["condition"] == "service_completed_successfully", name
    for name in ("server", "harvester"):
        assert services[name]["depends_on"]["lake-init"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("worker", "harvester"):
        assert services[name]["depends_on"]["scheduler"]["condition"] == "service_healthy"
    assert services["make-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_make_bucket_creates_the_bucket_lake_root_names(tmp_path: Path) -> None:
    # The first line of make-bucket's script, run by a real shell on the example LAKE_ROOT.
    service = compose()["services"]["make-bucket"]
    script = service["command"][0].replace("$$", "$")
    first = script.splitlines()[0]
    lake_root = read_env_file(INFRA / "lake.env.example")["LAKE_ROOT"]
    result = subprocess.run(
        ["/bin/sh", "-ec", f'{first}\nprintf %s "$bucket"'],
        env={"LAKE_ROOT": lake_root, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == urlparse(lake_root).netloc == "coastlake"
    assert 'mb --ignore-existing "lake/$bucket"' in script


@pytest.mark.slow
def test_harvester_stops_cleanly_with_nothing_to_harvest_and_is_not_restarted(
    tmp_path: Path,
) -> None:
    # `lake harvest --watch` on a registry of catalog-only feeds: it must not spin. It ends
    # with exit 0, which the harvester's restart policy (on-failure) leaves ended.
    harvester = compose()["services"]["harvester"]
    assert as_list(harvester["command"]) == ["lake", "harvest", "--watch"]
    assert harvester["restart"] == "on-failure"
    sample = yaml.safe_load((REPO / "registry" / "sample.yaml").read_text(encoding="utf-8"))
    external = [s for s in sample["streams"] if s["source"]["kind"] == "external"]
    assert external, "the sample registry has a catalog-only feed"
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({"streams": external}), encoding="utf-8")
    env = {
        **os.environ,
        "LAKE_ROOT": str(tmp_path / "lake"),
        "LAKE_REGISTRY": str(registry),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lake"), "-v", "harvest", "--watch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"watching {len(external)} streams" in out
    assert "no stream to harvest" in out
