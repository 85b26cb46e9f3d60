"""One CLI: global options after the verb, --json shapes, structured validation errors, did-you-mean,
shell completion (bash, zsh; verbs, tenant, host and runbook names)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, make_env
from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.cli.inventory import structured

EXAMPLE = paths.PROJECT_ROOT / "inventories" / "example"
ROOT = paths.PROJECT_ROOT


def run(*argv: str, app: AppContext | None = None) -> tuple[int, str, str]:
    app = app or AppContext(stdout=io.StringIO(), stderr=io.StringIO())
    code = main(list(argv), app=app)
    return code, app.stdout.getvalue(), app.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture()
def lab(tmp_path: Path):
    """A copy of the lab inventory and an app whose Env has a fake playbook runner and SSH."""
    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    app = AppContext(inventory=inv, state_dir_override=tmp_path / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    app._env = make_env(inv, tmp_path / "state", playbooks=FakePlaybookRunner(), ssh=FakeSsh(),
                        vault_password_file=inv / "vault-password")
    return inv, app


# --------------------------------------------------------------------------- global options
def test_inventory_after_the_verb(tmp_path: Path) -> None:
    code, out, err = run("inventory", "validate", "--inventory", str(EXAMPLE), "--state-dir", str(tmp_path))
    assert code == 0, err
    assert f"inventory {EXAMPLE} is valid" in out


def test_after_the_verb_wins_over_before(tmp_path: Path) -> None:
    code, out, _ = run("-i", "/nonexistent", "tenant", "list", "--json", "-i", str(EXAMPLE))
    assert code == 0 and {t["slug"] for t in json.loads(out)} >= {"bron"}


def test_vault_password_file_follows_an_inventory_given_after_the_verb(tmp_path: Path) -> None:
    app = AppContext(stdout=io.StringIO(), stderr=io.StringIO())
    assert main(["tenant", "list", "--inventory", str(EXAMPLE), "--state-dir", str(tmp_path)], app=app) == 0
    assert app.inventory == EXAMPLE and app.vault_password_file == EXAMPLE / "vault-password"
    assert app.state_dir == tmp_path


def test_debug_and_verbose_after_the_verb() -> None:
    app = AppContext(stdout=io.StringIO(), stderr=io.StringIO())
    assert main(["runbook", "validate", "-v", "-v", "--debug"], app=app) == 0
    assert app.debug and app.verbose == 2


def test_json_before_the_verb() -> None:
    code, out, _ = run("--json", "tenant", "list", "-i", str(EXAMPLE))
    assert code == 0 and isinstance(json.loads(out), list)


def test_json_before_a_verb_without_json_is_refused() -> None:
    code, _, err = run("--json", "runbook", "validate")
    assert code == 2 and "'tnoctl runbook validate' has no --json output" in err


# --------------------------------------------------------------------------- did you mean
@pytest.mark.parametrize(("argv", "hint"), [
    (["deplyo"], "Did you mean 'deploy'?"),
    (["backup", "drll"], "Did you mean 'drill'?"),
    (["status", "--tenat", "x"], "'--tenant'"),
])
def test_did_you_mean(argv: list[str], hint: str) -> None:
    code, _, err = run(*argv)
    assert code == 2 and hint in err and "Traceback" not in err


def test_unknown_runbook_suggests_the_closest() -> None:
    code, _, err = run("runbook", "show", "TnoBackupTooOl")
    assert code == 2 and "did you mean 'TnoBackupTooOld'?" in err


# --------------------------------------------------------------------------- structured errors
def test_validate_json_errors_are_file_field_message(lab) -> None:
    inv, _ = lab
    (inv / "tenants" / "givors.yml").write_text((inv / "tenants" / "givors.yml").read_text()
                                                 .replace("quota: 2G", "quota: 5 GO", 1))
    (inv / "tenants" / "zz.yml").write_text("a: [1\n")
    code, out, _ = run("inventory", "validate", "--json", "--inventory", str(inv), "--state-dir", str(inv / ".s"))
    doc = json.loads(out)
    assert code == 2 and doc["valid"] is False
    assert {"file": "tenants/givors.yml", "field": "mailboxes[0].quota",
            "message": "'5 GO' is not a size like 5G"} in doc["errors"]
    assert any(e["file"] == "tenants/zz.yml" and e["field"].startswith("line ") for e in doc["errors"])
    assert all(set(e) == {"file", "field", "message"} for e in doc["errors"])


@pytest.mark.parametrize(("line", "expected"), [
    ("hosts.yml: all.children.mail: missing", ("hosts.yml", "all.children.mail", "missing")),
    ("tenants/a.yml: domains[1]: 'x' is also in b", ("tenants/a.yml", "domains[1]", "'x' is also in b")),
    ("tenants/a.yml: cannot read: too big", ("tenants/a.yml", "", "cannot read: too big")),
    ("inventory /x: not a directory", ("", "", "inventory /x: not a directory")),
    ("... and 3 more errors", ("", "", "... and 3 more errors")),
])
def test_structured(line: str, expected: tuple[str, str, str]) -> None:
    assert tuple(structured(line).values()) == expected


# --------------------------------------------------------------------------- --json shapes
def test_plan_json(lab) -> None:
    _, app = lab
    code, out, _ = run("plan", "--tenant", "givors", "--json", app=app)
    doc = json.loads(out)
    assert code == 0 and set(doc) == {"hosts", "pending", "changes", "artifacts"}
    assert doc["pending"] == 0 and doc["changes"] == [] and doc["hosts"]


def test_upgrade_dry_run_json(lab) -> None:
    _, app = lab
    app.env.ssh.results.update({h: (0, "1.0\n") for h in ("office1", "office2")})
    code, out, err = run("upgrade", "office", "--to", "9.9", "--dry-run", "--json", "--ignore-windows", app=app)
    assert code == 0, err
    doc = json.loads(out)
    assert {"component", "to_version", "batch", "max_failures", "ignore_windows", "hosts"} <= set(doc)
    assert doc["component"] == "office" and doc["to_version"] == "9.9"
    assert {h["host"] for h in doc["hosts"]} == {"office1", "office2"}
    assert set(doc["hosts"][0]) == {"wave", "wave_name", "host", "tenants", "installed", "window_open",
                                    "closed_windows"}


def test_upgrade_json_needs_dry_run_or_yes(lab) -> None:
    _, app = lab
    code, _, err = run("upgrade", "office", "--to", "9.9", "--json", app=app)
    assert code == 2 and "--json needs --dry-run or --yes" in err


@pytest.mark.parametrize("verb", ["run", "verify", "drill"])
def test_backup_json(lab, verb: str) -> None:
    _, app = lab
    app.env.ssh.results[app.env.inventory.platform.tno_backup_host] = (0, '{"archives": []}')  # borg: no archive
    code, out, _ = run("backup", verb, "--tenant", "givors", "--json", app=app)
    doc = json.loads(out)
    assert code in (0, 1) and [t["slug"] for t in doc["tenants"]] == ["givors"]
    assert set(doc["tenants"][0]) == {"slug", "ok", "refused", "detail", "errors", "duration_seconds", "data"}


# --------------------------------------------------------------------------- completion
def _complete(shell: str, words: str | None = None, cword: int = 0, inventory: Path | None = None) -> str:
    env = {**os.environ, "_TNOCTL_COMPLETE": f"{shell}_source" if words is None else f"{shell}_complete"}
    env.pop("TNO_INVENTORY", None)
    if inventory is not None:
        env["TNO_INVENTORY"] = str(inventory)
    if words is not None:
        env.update(COMP_WORDS=words, COMP_CWORD=str(cword))
    res = subprocess.run([sys.executable, "-m", "tnoctl"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_bash_and_zsh_completion_scripts_generate() -> None:
    bash = _complete("bash")
    assert "_tnoctl_completion()" in bash and "complete -o nosort -F _tnoctl_completion tnoctl" in bash
    assert "#compdef tnoctl" in _complete("zsh")


def test_completion_of_verbs_tenants_hosts_and_runbooks() -> None:
    assert "plain,backup" in _complete("bash", "tnoctl ba", 1).splitlines()
    assert "plain,givors" in _complete("bash", "tnoctl tenant show gi", 3).splitlines()
    assert "plain,givors" in _complete("bash", "tnoctl status --tenant gi", 3).splitlines()
    assert "plain,mail1" in _complete("bash", "tnoctl deploy --host ma", 3).splitlines()
    assert "plain,TnoBackupTooOld" in _complete("bash", "tnoctl runbook run TnoBackupT", 3).splitlines()
    example = _complete("bash", "tnoctl tenant show b", 3, inventory=EXAMPLE).splitlines()
    assert "plain,bron" in example


def test_unknown_tenant_and_host_suggest_the_closest() -> None:
    code, _, err = run("tenant", "show", "givor")
    assert code == 2 and "unknown tenant 'givor'; did you mean 'givors'?" in err
    code, _, err = run("plan", "--host", "mail3", "-i", str(EXAMPLE))
    assert code == 2 and "unknown host 'mail3'" in err and "did you mean" in err
