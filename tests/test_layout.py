"""Imports run one way (DESIGN.md, ARCHITECTURE.md), checked on every import of every module.

The lake core (`lake/`) imports no other package of ours; the capabilities (`ingest/`, `qc/`,
`stac/`, `tiles/`) import only the core; the application (`coastlake/`) may import them all.
Every import counts: at the top of a module, inside functions, under `TYPE_CHECKING`, and the
string given to `importlib.import_module` or `__import__`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: What each package of ours may import, besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "lake": frozenset(),
    "ingest": frozenset({"lake"}),
    "qc": frozenset({"lake"}),
    "stac": frozenset({"lake"}),
    "tiles": frozenset({"lake"}),
    "steward": frozenset({"lake", "qc"}),
    "coastlake": frozenset({"lake", "ingest", "qc", "stac", "tiles", "steward"}),
}
IMPORT_FUNCTIONS = {"import_module", "__import__"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in `path`: statements anywhere, and the literal names
    passed to `importlib.import_module` / `__import__`. Relative imports resolve against the
    module's own package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, path.parent.name))  # relative: its own package
            elif node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in IMPORT_FUNCTIONS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append((node.lineno, first.value))
                elif isinstance(first, ast.JoinedStr):
                    head = first.values[0] if first.values else None
                    if isinstance(head, ast.Constant) and isinstance(head.value, str):
                        found.append((node.lineno, head.value))
    return found


def wrong_arrows(root: Path) -> list[str]:
    """Every import in the packages under `root` that runs against ALLOWED, as
    'file:line imports module'."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imports_of(path):
                top = module.split(".")[0]
                if top in ALLOWED and top != package and top not in allowed:
                    where = path.relative_to(root)
                    problems.append(f"{where}:{line} imports {module}")
    return problems


def test_every_import_runs_one_way() -> None:
    problems = wrong_arrows(REPO)
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_every_package_is_checked() -> None:
    """A new top-level package of ours must be given its place in ALLOWED."""
    ours = {
        p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name not in ("tests", "bench")
    }
    assert ours == set(ALLOWED)


@pytest.mark.parametrize(
    "planted",
    [
        "from ingest.ndbc import NdbcHarvester\n",
        "def later():\n    from qc.runner import flag_table\n",
        "import importlib\n\ndef later():\n    return importlib.import_module('stac.build')\n",
        "def later(kind):\n    return __import__(f'tiles.{kind}')\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import coastlake.cli\n",
    ],
    ids=["top-level", "in-function", "importlib", "dunder-import", "type-checking"],
)
def test_checker_finds_a_planted_upward_import(tmp_path: Path, planted: str) -> None:
    """The checker itself: a small tree, right in every way but one upward import."""
    for package in ALLOWED:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "ingest" / "ok.py").write_text("from lake.errors import LakeError\n")
    (tmp_path / "coastlake" / "ok.py").write_text("import ingest.ok\nimport qc\n")
    assert wrong_arrows(tmp_path) == []
    (tmp_path / "lake" / "core.py").write_text(planted)
    problems = wrong_arrows(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("lake/core.py:"), problems


def test_capabilities_do_not_import_each_other(tmp_path: Path) -> None:
    """A sideways import (tiles into stac) is refused as well as an upward one."""
    for package in ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "tiles" / "wms.py").write_text("from stac.describe import collection\n")
    assert wrong_arrows(tmp_path) == ["tiles/wms.py:1 imports stac.describe"]
