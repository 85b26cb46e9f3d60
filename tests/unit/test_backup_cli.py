"""`backup`, `restore`, `tenant remove`: bad input and a missing --yes are refused before any host (exit 2)."""

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


@pytest.mark.parametrize("argv", [
    ["backup", "prune", "--tenant", "givors"],
    ["backup", "shred", "oldcommune"],
    ["backup", "recover-deleted", "--tenant", "givors", "--transaction", "42"],
    ["restore", "--tenant", "givors", "--mailbox", "dgs@givors.test"],
    ["tenant", "remove", "givors"],
])
def test_changing_verbs_without_terminal_need_yes(tmp_path: Path, argv: list[str]) -> None:
    """No terminal and no --yes: exit 2 before anything is done (no audit record, no lock)."""
    err = io.StringIO()
    app = AppContext(inventory=LAB, state_dir_override=tmp_path, stdout=io.StringIO(), stderr=err)
    assert main(["--inventory", str(LAB), "--state-dir", str(tmp_path), *argv], app=app) == 2
    assert "needs --yes when not run from a terminal" in err.getvalue()
    assert not (tmp_path / "audit.jsonl").exists() and not list(tmp_path.rglob("*.lock"))


@pytest.mark.parametrize(("argv", "message"), [
    (["backup", "prune", "--tenant", "nowhere", "--yes"], "nowhere"),
    (["restore", "--tenant", "givors", "--mailbox", "nobody@givors.test"], "not a mailbox of tenant givors"),
    (["restore", "--tenant", "givors", "--to-host", "office1"], "not a host of group mail"),
    (["restore", "--tenant", "givors"], "exactly one of --mailbox or --to-host"),
    (["tenant", "remove", "nowhere"], "nowhere"),
    (["backup", "shred", "givors", "--yes"], "still a tenant"),
])
def test_arguments_are_checked_before_asking(tmp_path: Path, argv: list[str], message: str) -> None:
    err = io.StringIO()
    app = AppContext(inventory=LAB, state_dir_override=tmp_path, stdout=io.StringIO(), stderr=err)
    assert main(["--inventory", str(LAB), "--state-dir", str(tmp_path), *argv], app=app) == 2
    assert message in err.getvalue() and "needs --yes" not in err.getvalue()
