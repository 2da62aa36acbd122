"""The package boundaries of DESIGN.md, checked by parsing imports (ast).

lake core (settings, registry, storage, tables, grids, errors, delta, stations, records) imports
none of ingest/qc/stac/tiles; ingest/qc/stac/tiles never import each other or the server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = [
    "settings",
    "registry",
    "storage",
    "tables",
    "grids",
    "errors",
    "delta",
    "stations",
    "records",
    "duck",
]
PACKAGES = ["ingest", "qc", "stac", "tiles"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_lake_core_imports_no_other_package(module: str) -> None:
    path = REPO / "lake" / f"{module}.py"
    if not path.exists():
        pytest.skip(f"lake/{module}.py not in this build")
    wrong = {m for m in imported_modules(path) if m.split(".")[0] in PACKAGES}
    wrong |= {
        m for m in imported_modules(path) if m.startswith("lake.") and m.split(".")[1] not in CORE
    }
    assert not wrong, f"lake/{module}.py imports {sorted(wrong)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_do_not_import_each_other(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top == package or top not in PACKAGES, f"{path} imports {module}"
            assert module not in ("lake.server", "lake.cli"), f"{path} imports {module}"
