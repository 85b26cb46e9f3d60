"""`tnoctl lab` guards: root required (exit 4, clear message); credentials only for the lab inventory."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext


def run(argv: list[str], inventory: Path = paths.LAB_INVENTORY) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, AppContext(inventory=inventory, stdout=out, stderr=err))
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [["lab", "up"], ["lab", "down"], ["lab", "status"], ["lab", "restart-host", "mail1"]])
def test_lab_needs_root(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    rc, _, err = run(argv)
    assert rc == 4
    assert "tnoctl lab needs root (it creates network namespaces and mounts); run it as root" in err
    assert "Traceback" not in err


def test_ssh_config_prints_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TNO_LAB_DIR", str(tmp_path))
    rc, out, _ = run(["lab", "ssh-config"])
    assert (rc, out) == (0, f"{tmp_path}/ssh_config\n")


def test_credentials_refuse_other_inventories() -> None:
    rc, out, err = run(["lab", "credentials", "--json"], inventory=paths.PROJECT_ROOT / "inventories" / "example")
    assert rc == 4 and out == ""
    assert "only reads the lab inventory" in err


def test_credentials_list_every_lab_mailbox() -> None:
    rc, out, err = run(["lab", "credentials", "--json"])
    assert rc == 0, err
    rows = json.loads(out)
    assert rows and all(set(r) == {"tenant", "address", "password"} for r in rows)
    assert all("@" in r["address"] and r["password"] and not r["password"].startswith("$ANSIBLE") for r in rows)
    assert len({r["address"] for r in rows}) == len(rows)


def test_every_lab_command_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("up", "down", "status", "ssh", "ssh-config", "credentials", "restart-host"):
        rc, _, _ = run(["lab", sub, "--help"])
        assert rc == 0 and "Example:" in capsys.readouterr().out, sub
