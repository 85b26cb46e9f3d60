"""Production login path on the lab: operator account + sudo, root refused, and a bastion (ProxyJump).

An inventory copy makes backup1 the jump host of mail2 (``-o ProxyJump=tnoops@backup1`` in mail2's
``ansible_ssh_common_args``, the operator account on both). A playbook run (`tnoctl plan --host
mail2`) and a direct-SSH verb (`tnoctl backup run --tenant <a tenant of mail2>`) must then reach
mail2 *through* backup1: mail2's sshd logs their logins as coming from backup1's address, never
from the controller's. Uses the session fixtures of tests/e2e/conftest.py and fleet.py.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.lab.base import OPERATOR

pytestmark = [pytest.mark.root, pytest.mark.lab]

TARGET, JUMP = "mail2", "backup1"


def _openssh(fleet: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    """Plain OpenSSH with the lab ssh_config (what a person runs), no sudo."""
    return subprocess.run(["ssh", "-F", str(fleet.ssh_config), *argv], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("host", ["mail1", "backup1"])
def test_root_login_is_refused_and_the_operator_has_passwordless_sudo(fleet: Any, host: str) -> None:
    refused = _openssh(fleet, "-o", "User=root", host, "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    operator = _openssh(fleet, host, "id -un; sudo -n id -un")
    assert operator.returncode == 0, operator.stderr
    assert operator.stdout.split() == [OPERATOR, "root"]
    assert "permitrootlogin no" in fleet.ssh(host, "sshd", "-T").stdout


@pytest.fixture(scope="module")
def bastion(fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the lab inventory in which mail2 is reached through backup1 (ProxyJump)."""
    inventory = tmp_path_factory.mktemp("bastion") / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, inventory, ignore=shutil.ignore_patterns(".tno"))
    hosts = inventory / "hosts.yml"
    address = fleet.address(TARGET)
    jump = f"-F {fleet.ssh_config} -o ProxyJump={OPERATOR}@{JUMP}"
    entry = f"{TARGET}: {{ansible_host: {address}}}"
    assert entry in hosts.read_text()
    hosts.write_text(hosts.read_text().replace(
        entry, f'{TARGET}: {{ansible_host: {address}, ansible_ssh_common_args: "{jump}"}}'))
    # Ansible's ssh control masters are keyed on host/port/user only: a master left by an earlier
    # direct connection would carry this run's commands without the jump. Own control dir here.
    control_dir = tempfile.mkdtemp(prefix="tno-cp-bastion-", dir="/tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", control_dir)
        yield inventory
    shutil.rmtree(control_dir, ignore_errors=True)


def _tnoctl(fleet: Any, inventory: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inventory, state_dir_override=fleet.state_dir,
                     vault_password_file=inventory / "vault-password", stdout=out, stderr=err)
    rc = main(["--inventory", str(inventory), "--state-dir", str(fleet.state_dir), *argv], app=app)
    return rc, out.getvalue(), err.getvalue()


def _logins_since(fleet: Any, since: float) -> list[str]:
    """Source addresses of the operator's accepted SSH logins on the target since ``since``."""
    log = fleet.ssh(TARGET, "journalctl", "-u", "ssh", "--since", f"@{int(since) - 1}", "-o", "cat",
                    "--no-pager").stdout
    prefix = f"Accepted publickey for {OPERATOR} from "
    return [line[len(prefix):].split()[0] for line in log.splitlines() if line.startswith(prefix)]


def test_playbook_run_goes_through_the_jump_host(fleet: Any, bastion: Path) -> None:
    since = time.time()
    rc, out, err = _tnoctl(fleet, bastion, "plan", "--host", TARGET, "--exit-zero")
    assert rc == 0, f"{out}\n{err[-3000:]}"
    sources = _logins_since(fleet, since)
    assert sources and sources[0] == fleet.address(JUMP), sources  # the first login came through backup1


def test_direct_ssh_verb_goes_through_the_jump_host(fleet: Any, backups: Any, bastion: Path) -> None:
    slug = next(t for t in fleet.tenants if fleet.mail_host(t) == TARGET)
    since = time.time()
    rc, out, err = _tnoctl(fleet, bastion, "backup", "run", "--tenant", slug)
    assert rc == 0, f"{out}\n{err[-3000:]}"
    sources = _logins_since(fleet, since)
    assert sources and sources[0] == fleet.address(JUMP), sources
    rc, out, err = _tnoctl(fleet, bastion, "tenant", "dns", slug)
    assert rc == 0 and "DKIM1" in out, f"{out}\n{err[-2000:]}"
    assert _logins_since(fleet, since).count(fleet.address(JUMP)) >= 2
