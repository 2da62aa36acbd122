"""What the deployment files are checked against: the settings the code reads, the programs
the image installs, and each command's own `--help` (run for real, in this environment,
which `./bootstrap` builds from the same uv.lock as the image)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from lake.settings import Settings

REPO = Path(__file__).resolve().parent.parent.parent
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
DATA = REPO / "tests" / "data"
BIN = Path(sys.executable).parent

#: Programs every image of ours has besides the console scripts: the base image's Python
#: and shell.
BASE_PROGRAMS = frozenset({"python", "sh", "/bin/sh"})


def settings_env_names() -> set[str]:
    """Every environment variable the lake reads: a LAKE_ name per Settings field (or the
    field's alias, for the AWS_* ones), plus AWS_DEFAULT_REGION, read by Settings.region."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = {"AWS_DEFAULT_REGION"}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file (compose's format: # comments, blank lines)."""
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            raise ValueError(f"{path}:{number}: not a NAME=value line: {line!r}")
        out[name] = value
    return out


@cache
def _lock() -> dict[str, Any]:
    with (REPO / "uv.lock").open("rb") as f:
        return tomllib.load(f)


@cache
def runtime_distributions() -> frozenset[str]:
    """The distributions the image installs (`uv sync --no-dev`): coastlake and the closure
    of its locked dependencies, without the dev group."""
    packages = {p["name"]: p for p in _lock()["package"]}
    seen: set[tuple[str, str | None]] = set()
    todo: list[tuple[str, str | None]] = [("coastlake", None)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        package = packages[name]
        if extra:  # what `dask[dataframe]` adds to `dask`
            deps = package.get("optional-dependencies", {}).get(extra, [])
        else:
            deps = package.get("dependencies", [])
        for dep in deps:
            todo.append((dep["name"], None))
            todo += [(dep["name"], e) for e in dep.get("extra", [])]
    return frozenset(name for name, _ in seen)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def image_programs() -> frozenset[str]:
    """Console scripts of the distributions the image installs, plus the base programs."""
    runtime = {_normal(d) for d in runtime_distributions()}
    scripts = {
        ep.name
        for ep in entry_points(group="console_scripts")
        if ep.dist is not None and _normal(ep.dist.name) in runtime
    }
    return frozenset(scripts | BASE_PROGRAMS)


def _subcommand(argv: list[str]) -> list[str]:
    """The program and its subcommand words (`lake harvest`, `dask worker`): the leading
    words that are names, not options, addresses or values."""
    words = [argv[0]]
    for word in argv[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return words


@cache
def help_text(words: tuple[str, ...]) -> str:
    """`<program> <subcommand> --help`, run from this environment's bin folder."""
    result = subprocess.run(
        [str(BIN / words[0]), *words[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(BIN), "COLUMNS": "200", "TERM": "dumb", "HOME": str(REPO)},
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(words)} --help failed: {result.stdout}{result.stderr}")
    return result.stdout


def command_problems(argv: list[str], where: str) -> list[str]:
    """Why `argv` would not run in the image: a program it does not install, a subcommand
    that does not exist, or an option the subcommand does not declare (from its --help)."""
    if not argv:
        return [f"{where}: no command"]
    program = argv[0]
    if program not in image_programs():
        return [f"{where}: {program!r} is not a program of the image"]
    if program in BASE_PROGRAMS:
        return []
    words = _subcommand(argv)
    try:
        text = help_text(tuple(words))
    except AssertionError as exc:
        return [f"{where}: {exc}"]
    declared = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    used = {a.split("=", 1)[0] for a in argv[len(words) :] if a.startswith("--")}
    return [f"{where}: {' '.join(words)} has no option {opt}" for opt in sorted(used - declared)]


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a manifest file (empty documents skipped)."""
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]
