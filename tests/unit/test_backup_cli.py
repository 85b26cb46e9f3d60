"""`backup` verbs: input errors are refused before any host is contacted (exit 2)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tnoctl.cli import main
from tnoctl.cli.context import AppContext

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"


@pytest.mark.parametrize("argv", [
    ["backup", "run", "--tenant", "givors", "--tag", "bad tag"],
    ["backup", "drill", "--archive", "givors-2026", "--tenant", "givors", "--tenant", "corbas"],
])
def test_bad_input_exits_2(tmp_path: Path, argv: list[str]) -> None:
    err = io.StringIO()
    app = AppContext(inventory=LAB, state_dir_override=tmp_path, stdout=io.StringIO(), stderr=err)
    assert main(["--inventory", str(LAB), "--state-dir", str(tmp_path), *argv], app=app) == 2
    assert "error" in err.getvalue() and not list(tmp_path.rglob("*.lock"))
