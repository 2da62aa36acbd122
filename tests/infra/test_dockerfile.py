"""infra/Dockerfile and .dockerignore: the image is built from uv.lock as ./bootstrap builds the
environment, runs as a non-root user, and its health check answers against a real server.
(No docker daemon here: the file is read, and what it runs is run.)"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.infra.deploy import INFRA, K8S, REPO, command_problems, load_yaml_documents

DOCKERFILE = INFRA / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """The build arguments' defaults and the stages, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stages.append(Stage(base, parts[2] if len(parts) == 3 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(args: str) -> list[str]:
    """A JSON-array instruction (CMD, HEALTHCHECK ... CMD [...]) as argv."""
    value = yaml.safe_load(args[args.index("[") :])
    assert isinstance(value, list)
    return [str(v) for v in value]


def ignored(path: str, patterns: list[str] | None = None) -> bool:
    """Whether .dockerignore leaves `path` (relative, '/'-separated) out of the build context:
    Docker's rules (a pattern matches the path or a folder above it, `**` any depth, the last
    matching line wins, `!` takes back)."""
    if patterns is None:
        lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        patterns = [p.strip() for p in lines if p.strip() and not p.strip().startswith("#")]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            result = not negate
    return result


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def test_the_ignore_matcher_follows_dockers_rules() -> None:
    rules = ["node_modules", "**/node_modules", "infra/*.env", "!infra/*.env.example"]
    assert ignored("portal/node_modules/x/y.js", rules)
    assert ignored("node_modules", rules)
    assert ignored("infra/lake.env", rules)
    assert not ignored("infra/lake.env.example", rules)
    assert not ignored("portal/src/main.js", rules)


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        ".tools/bin/uv",
        "lake-data/tables/x.parquet",
        "bench/work/region/x",
        "portal/node_modules/esbuild/package.json",
        "test-artifacts/x.png",
        "coastlake/server/portal_static/portal.js",
        "lake/__pycache__/x.pyc",
        "infra/lake.env",
        "infra/minio.env",
    ]:
        assert ignored(path), path
    # ... and keeps every file the image is built from.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    packages = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "hatch"
    ]["build"]["targets"]["wheel"]["packages"]
    needed = [
        f
        for f in tracked
        if f.split("/")[0] in {*packages, "registry", "portal"}
        or f in {"pyproject.toml", "uv.lock", "README.md", "infra/lake.env.example"}
    ]
    assert len(needed) > 100
    assert [f for f in needed if ignored(f)] == []


def test_the_image_is_built_from_the_lock_file() -> None:
    _, stages = dockerfile()
    (build,) = [s for s in stages if s.name == "build"]
    syncs = [r for r in build.all("RUN") if "uv sync" in r]
    assert len(syncs) == 2 and all("--frozen" in r and "--no-dev" in r for r in syncs)
    assert "--no-install-project" in syncs[0]  # the dependencies' layer, then the code
    copies = build.all("COPY")
    assert copies[0].split()[:-1] == ["pyproject.toml", "uv.lock", "README.md"]
    # The same uv as ./bootstrap, which builds every developer's and CI's environment.
    pinned = re.findall(r'"uv==([\d.]+)"', (REPO / "bootstrap").read_text(encoding="utf-8"))
    assert pinned and f'"uv=={pinned[0]}"' in " ".join(build.all("RUN"))
    # Every file a COPY names from the context exists.
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from"):
                continue
            for source in copy.split()[:-1]:
                assert (REPO / source).exists(), source
                assert not ignored(source.rstrip("/")), source


def test_python_and_portal_are_those_of_the_project() -> None:
    args, stages = dockerfile()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11,<3.12"
    assert re.fullmatch(r"python:3\.11[\w.-]*", args["PYTHON_IMAGE"])
    for stage in stages:
        assert not stage.base.endswith(":latest") and ":" in stage.base, stage.base
    (portal,) = [s for s in stages if s.name == "portal"]
    runs = " ".join(portal.all("RUN"))
    assert "npm ci" in runs and "npm run --silent build" in runs  # as ./bootstrap builds it
    final = stages[-1]
    static = "/app/coastlake/server/portal_static"
    assert f"--from=portal {static} {static}" in final.all("COPY")
    assert (
        (REPO / "coastlake" / "server" / "app.py")
        .read_text(encoding="utf-8")
        .count('"portal_static"')
    )


def test_the_image_runs_as_a_non_root_user_the_manifests_name() -> None:
    _, stages = dockerfile()
    final = stages[-1]
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    created = re.search(r"useradd .*--uid (\d+)", " ".join(final.all("RUN")))
    assert created and created.group(1) == uid
    users = [
        doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        for doc in load_yaml_documents(K8S / "server.yaml")
        if doc["kind"] == "Deployment"
    ]
    assert users == [int(uid)]


@pytest.mark.slow
def test_cmd_runs_and_the_health_check_answers_a_real_server(tmp_path: Path) -> None:
    _, stages = dockerfile()
    final = stages[-1]
    (cmd,) = final.all("CMD")
    argv = exec_form(cmd)
    assert command_problems(argv, "CMD") == []
    (check,) = final.all("HEALTHCHECK")
    probe = exec_form(check.split(" CMD ", 1)[1])
    assert probe[0] == "python" and "/healthz" in " ".join(probe)
    # The image's own CMD, on a free port of 127.0.0.1, over an empty lake.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = [*argv]
    serve[serve.index("--host") + 1] = "127.0.0.1"
    serve[serve.index("--port") + 1] = str(port)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "LAKE_ROOT": str(tmp_path / "lake")}
    local_probe = [str(bin_dir / "python"), *[a.replace(":8000/", f":{port}/") for a in probe[1:]]]
    server = subprocess.Popen(
        [str(bin_dir / serve[0]), *serve[1:]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):  # until it listens (up to a minute on a busy machine)
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, "lake serve exited"
                time.sleep(0.1)
        healthy = subprocess.run(local_probe, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    # Nothing listening: the same check fails, so Docker would mark the container unhealthy.
    down = subprocess.run(local_probe, capture_output=True, text=True, timeout=30)
    assert down.returncode != 0
