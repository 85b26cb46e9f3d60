"""Rspamd's controller behind the mail host's own vault-held password (issue 14).

Why: Rspamd trusts 127.0.0.1 and ::1 by default (``secure_ip``) and Debian ships ``password = "q1"``,
so any local process on a mail host could read the statistics and change maps or learn without a
password. The role empties ``secure_ip``, includes a catena hash computed by Rspamd itself, and keeps a
root-only copy of the password for the metrics timer. Asserted here: the vault name (per host, in the
platform namespace, collision-free), the rendered worker configuration as Rspamd parses it
(``rspamadm configdump``), the on-host script (hash format, modes, idempotence, check mode, no secret
in its output) and the deploy guard naming the missing variable and the command that creates it.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from role_render import render

from tnoctl import paths
from tnoctl.config import hostsecrets, vault
from tnoctl.config.ansible_view import host_vars
from tnoctl.config.load import load_inventory
from tnoctl.config.logical import tenant_rules
from tnoctl.config.schema import Tenant

SCRIPT = paths.PROJECT_ROOT / "roles" / "tno_mail" / "files" / "tno_rspamd_controller_password.py"
SECRET = "Rspamd-Test-Secret-0123456789"
RSPAMADM = shutil.which("rspamadm")


def _script():
    spec = importlib.util.spec_from_file_location("tno_rspamd_controller_password", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vault_name_is_per_host_in_the_platform_namespace_and_collision_free() -> None:
    names = {hostsecrets.rspamd_password_var(h) for h in ("mail-1", "mail_1", "Mail.1", "mail1")}
    assert len(names) == 4
    assert all(re.fullmatch(r"tno_vault_rspamd_[a-z0-9_]+_[0-9a-f]{8}", n) for n in names)
    assert hostsecrets.rspamd_password_var("mail1") == hostsecrets.rspamd_password_var("mail1")
    # a tenant cannot own the namespace (slug "rspamd") nor name a host's secret for a mailbox
    tenant = Tenant(slug="rspamd", name="R", insee="69001", domains=["r.test"], services=["mail"],
                    placement={"mail": "mail1"},
                    mailboxes=[{"local": "a", "name": "A", "password_vault": "tno_vault_rspamd_a"}])
    assert any("is reserved" in e for e in tenant_rules(tenant, "rspamd", None))
    assert "tno_vault_rspamd_" in vault.PLATFORM_SECRET_PREFIXES  # the deploy's scrubber masks the values


def test_lab_and_example_vaults_hold_every_mail_hosts_secret_and_ansible_gets_its_name() -> None:
    for inventory in (paths.LAB_INVENTORY, paths.PROJECT_ROOT / "inventories" / "example"):
        inv = load_inventory(inventory)
        mail = [n for n, h in inv.hosts.items() if "mail" in h.groups]
        assert mail and hostsecrets.missing(inventory, None, mail) == [], inventory
        view = host_vars(inv)
        for name, hvars in view.items():
            expected = hostsecrets.rspamd_password_var(name) if name in mail else None
            assert hvars.get("tno_mail_rspamd_password_vault") == expected


def test_missing_secret_names_the_variable_and_the_command(tmp_path: Path) -> None:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / vault.VAULT_REL).write_text("tno_vault_other: x\n")
    errors = hostsecrets.missing(tmp_path, None, ["mail9"])
    assert errors == [f"group_vars/all/vault.yml: {hostsecrets.rspamd_password_var('mail9')}: not defined "
                      "(Rspamd controller password of mail host mail9); create it with: tnoctl inventory secrets"]


def test_inventory_secrets_creates_missing_ones_once_and_never_shows_values(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tnoctl.cli import cli

    inventory = tmp_path / "lab"
    shutil.copytree(paths.LAB_INVENTORY, inventory, ignore=shutil.ignore_patterns(".tno"))
    text = (inventory / vault.VAULT_REL).read_text()
    kept = re.sub(r"tno_vault_rspamd_mail1_[0-9a-f]{8}: !vault \|\n(  .*\n)+", "", text)
    assert kept != text
    (inventory / vault.VAULT_REL).write_text(kept)
    password_file = inventory / "vault-password"
    args = ["--inventory", str(inventory), "--state-dir", str(tmp_path / "state"),
            "--vault-password-file", str(password_file), "inventory", "secrets"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    name = hostsecrets.rspamd_password_var("mail1")
    assert f"+ {name}" in first.output
    value = vault.decrypt_value(inventory, password_file, name)
    assert len(value) == 32 and value not in first.output
    assert value not in (tmp_path / "state" / "audit.jsonl").read_text()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "+ " not in again.output
    assert vault.decrypt_value(inventory, password_file, name) == value  # kept, not regenerated


def test_worker_controller_trusts_no_address_and_includes_the_hash() -> None:
    text = render("tno_mail", "rspamd/worker-controller.inc.j2", {})
    assert 'bind_socket = "127.0.0.1:11334";' in text
    assert "secure_ip = [];" in text
    assert '.include(try=false,priority=1,duplicate=merge) "/etc/rspamd/tno/controller-password.inc"' in text


@pytest.mark.skipif(RSPAMADM is None or not Path("/etc/rspamd/rspamd.conf").is_file(),
                    reason="needs Rspamd (Debian package rspamd) on this machine")
def test_rspamd_parses_no_secure_ip_and_the_hashed_password(tmp_path: Path) -> None:
    """Rspamd's own parser: local.d's secure_ip replaces the default loopback entries (not merged)."""
    conf = tmp_path / "rspamd"
    shutil.copytree("/etc/rspamd", conf, symlinks=True)
    main = conf / "rspamd.conf"
    main.write_text(main.read_text().replace("$LOCAL_CONFDIR", str(conf)).replace("$CONFDIR", str(conf)))
    include = tmp_path / "controller-password.inc"
    plain = tmp_path / "plain"
    done = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--plain", str(plain), "--include", str(include),
                           "--group", grp.getgrgid(os.getgid()).gr_name], input=SECRET + "\n",
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout == "changed\n", done.stderr
    (conf / "local.d").mkdir(exist_ok=True)
    (conf / "local.d" / "worker-controller.inc").write_text(
        render("tno_mail", "rspamd/worker-controller.inc.j2", {"__tno_mail_rspamd_password_include": str(include)}))
    dump = subprocess.run([RSPAMADM, "configdump", "-c", str(main), "worker"], capture_output=True, text=True,
                          check=False, timeout=120).stdout
    controller = dump[dump.index("controller {"):]
    controller = controller[: controller.index("}")]
    hashed = re.search(r'password = "(\$2\$[a-z0-9]+\$[a-z0-9]+)";', include.read_text())
    assert hashed is not None
    assert "secure_ip []" in controller and "127.0.0.1\";" not in controller.replace("127.0.0.1:11334", "")
    assert f'password = "{hashed.group(1)}";' in controller and f'enable_password = "{hashed.group(1)}";' in controller
    assert SECRET not in dump


@pytest.mark.skipif(RSPAMADM is None, reason="needs rspamadm (Debian package rspamd) on this machine")
def test_script_hashes_with_rspamd_writes_root_only_copy_and_is_idempotent(tmp_path: Path) -> None:
    plain, include = tmp_path / "etc" / "pw", tmp_path / "rspamd" / "inc"
    group = grp.getgrgid(os.getgid()).gr_name
    args = ["--plain", str(plain), "--include", str(include), "--group", group]
    module = _script()

    def run(extra: list[str], secret: str = SECRET) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/usr/bin/python3", str(SCRIPT), *extra, *args], input=secret + "\n",
                              capture_output=True, text=True, check=False)

    check = run(["--check"])
    assert (check.returncode, check.stdout) == (0, "would change\n") and not plain.exists()
    first = run([])
    assert (first.returncode, first.stdout) == (0, "changed\n"), first.stderr
    assert plain.read_text() == SECRET + "\n" and plain.stat().st_mode & 0o777 == 0o600
    assert include.stat().st_mode & 0o777 == 0o640
    assert module.INCLUDE_RE.search(include.read_text()) and SECRET not in include.read_text()
    before = include.read_text()
    again = run([])
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert include.read_text() == before  # same password: no new salt, no Rspamd restart
    rotated = run([], "Another-Secret-9876543210")
    assert rotated.stdout == "changed\n" and include.read_text() != before
    for done in (check, first, again, rotated):
        assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize("secret", ["short", 'quote"in-the-password', "back\\slash-password"])
def test_script_refuses_passwords_rspamd_config_cannot_hold(tmp_path: Path, secret: str) -> None:
    done = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--plain", str(tmp_path / "p"), "--include",
                           str(tmp_path / "i")], input=secret + "\n", capture_output=True, text=True, check=False)
    assert done.returncode == 2 and secret not in done.stdout + done.stderr
    assert not (tmp_path / "p").exists()


def test_deploy_and_plan_of_a_mail_host_without_its_secret_stop_before_any_run(tmp_path: Path) -> None:
    from tests.unit.fakes import FakePlaybookRunner, make_env
    from tnoctl.actions import deploy
    from tnoctl.errors import InvalidInput

    inventory = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inventory, ignore=shutil.ignore_patterns(".tno"))
    text = (inventory / vault.VAULT_REL).read_text()
    (inventory / vault.VAULT_REL).write_text(
        re.sub(r"tno_vault_rspamd_mail2_[0-9a-f]{8}: !vault \|\n(  .*\n)+", "", text))
    runner = FakePlaybookRunner()
    env = make_env(inventory, tmp_path / "state", playbooks=runner)
    for call in (lambda: deploy.run(env, deploy.DeployRequest(hosts=("mail2",))),
                 lambda: deploy.plan(env, deploy.PlanRequest(hosts=("mail2",)))):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert hostsecrets.rspamd_password_var("mail2") in caught.value.message
        assert "tnoctl inventory secrets" in caught.value.message
    assert runner.calls == []
    deploy.run(env, deploy.DeployRequest(hosts=("office1",)))  # a host that needs no such secret still deploys
    assert runner.calls
