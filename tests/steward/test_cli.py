"""The stewardship commands as a data manager runs them: `lake backup`, `lake verify`,
`lake restore`, `lake archive ncei`, `lake retention apply --dry-run` on a real lake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.steward.conftest import harvested_lake, write_registry

LAKE = str(Path(sys.executable).parent / "lake")


@pytest.mark.slow  # seven `lake` processes, each importing the stack
def test_backup_verify_restore_archive_commands(tmp_path: Path) -> None:
    registry = write_registry(tmp_path, ("ndbc-44013-stdmet",))
    storage, _ = harvested_lake(tmp_path, registry)
    env = {**os.environ, "LAKE_ROOT": storage.root, "LAKE_REGISTRY": str(registry)}

    def lake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LAKE, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )

    copy = str(tmp_path / "copy")
    done = lake("backup", "--to", copy)
    assert done.returncode == 0 and "objects copied" in done.stderr, done.stderr
    victim = next(Path(storage.root, "tables", "observations").rglob("*.parquet"))
    victim.unlink()
    damaged = lake("verify", "--against", copy)
    key = victim.relative_to(storage.root).as_posix()
    assert damaged.returncode == 1 and f"missing: {key}" in damaged.stdout
    assert lake("restore", "--from", copy).returncode == 0
    assert lake("verify").returncode == 0 and victim.exists()

    archived = lake("archive", "ncei", "--month", "2022-05", "--out", str(tmp_path / "ncei"))
    assert archived.returncode == 0 and "sent" in archived.stdout, archived.stderr
    dry = lake("retention", "apply", "--dry-run")
    assert dry.returncode == 0 and "within its retention rules" in dry.stderr
