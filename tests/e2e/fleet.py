"""Session fixture `fleet`: the lab communes deployed once, shared by every end-to-end test.

The lab has every tenant shape (mail and office, mail only, office only, three mail domains):
use `tenants_with("mail")` / `tenants_with("office")` where a test needs one service.

It depends on the session `lab` fixture (tests/e2e/conftest.py) and runs one real
`tnoctl deploy --yes` through the CLI, in-process, against the lab inventory; that deploy also publishes
every tenant's DNS records on the lab DNS (MX first: inter-commune mail is routed by MX, issue 15).
"""

from __future__ import annotations

import io
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext

SPECIAL_MAILBOXES = {"quota-test", "canary"}


@dataclass
class Fleet:
    """The deployed lab fleet, seen from a test."""

    inventory: object
    state_dir: Path
    ssh_config: Path
    ca_cert: Path
    secrets: dict[str, str] = field(repr=False)  # never in a failure report

    @property
    def tenants(self) -> list[str]:
        return [t.slug for t in self.inventory.tenants]

    def tenants_with(self, service: str) -> list[str]:
        """Slugs of the tenants that have ``service`` (mail or office), in inventory order."""
        return [t.slug for t in self.inventory.tenants if service in t.services]

    def _tenant(self, slug: str):
        return self.inventory.tenant(slug)

    def address(self, host: str) -> str:
        return self.inventory.hosts[host].address

    def mail_host(self, slug: str) -> str:
        return self._tenant(slug).placement.mail

    def office_host(self, slug: str) -> str:
        return self._tenant(slug).placement.office

    def domain(self, slug: str) -> str:
        return self._tenant(slug).domains[0]

    def _boxes(self, slug: str):
        tenant = self._tenant(slug)
        for box in tenant.mailboxes:
            address = f"{box.local}@{box.domain or tenant.domains[0]}"
            yield box.local, address, self.secrets[box.password_vault]

    def mailboxes(self, slug: str) -> list[tuple[str, str]]:
        return [(addr, pw) for local, addr, pw in self._boxes(slug) if local not in SPECIAL_MAILBOXES]

    def quota_mailbox(self, slug: str) -> tuple[str, str]:
        return next((addr, pw) for local, addr, pw in self._boxes(slug) if local == "quota-test")

    def canary_mailbox(self, slug: str) -> tuple[str, str]:
        return next((addr, pw) for local, addr, pw in self._boxes(slug) if local == "canary")

    @property
    def office_version(self) -> str:
        return str(self.inventory.platform.tno_office_version)

    def ssh(self, host: str, *argv: str, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as root on a lab host: OpenSSH as the operator account (tnoops), then ``sudo -n``.

        ``stdin``: text fed to the command (a secret goes there, never in ``argv``: argv shows in ``ps``).
        """
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), host, "--", shlex.join(["sudo", "-n", *argv])],  # argv intact
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def ok(self, *argv: str) -> str:
        """Run a tnoctl verb (see :meth:`tnoctl`) that must exit 0; return its stdout."""
        rc, out, err = self.tnoctl(*argv)
        assert rc == 0, f"tnoctl {' '.join(argv)} -> {rc}\n{out[-3000:]}\n{err[-3000:]}"
        return out

    def tnoctl(self, *argv: str) -> tuple[int, str, str]:
        """Run a tnoctl verb in-process against the lab inventory; return (rc, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        app = AppContext(
            inventory=paths.LAB_INVENTORY,
            state_dir_override=self.state_dir,
            vault_password_file=paths.LAB_INVENTORY / "vault-password",
            stdout=out,
            stderr=err,
        )
        rc = main(["--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(self.state_dir), *argv], app=app)
        return rc, out.getvalue(), err.getvalue()


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of a tnoctl process a test interrupts: SIGINT back to its default disposition.

    Why: a test runner started in the background (``nohup … &``, a CI shell without job control)
    ignores SIGINT, and every child inherits that; Python then installs no KeyboardInterrupt handler,
    so a SIGINT sent between two playbooks was silently ignored and the interrupted run went on to
    finish (exit 0). An operator's Ctrl-C reaches a foreground command with the default disposition:
    the test reproduces that, whatever the runner inherited.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _lab_secrets() -> dict[str, str]:
    from tnoctl.config.vault import read_vault

    return {k: str(v) for k, v in read_vault(paths.LAB_INVENTORY, paths.LAB_INVENTORY / "vault-password").items()}


@pytest.fixture(scope="session")
def fleet(lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Deploy the whole lab inventory once per test session."""
    from tnoctl.config import load_inventory

    state_dir = tmp_path_factory.mktemp("tno-state")
    fleet = Fleet(
        inventory=load_inventory(paths.LAB_INVENTORY),
        state_dir=state_dir,
        ssh_config=paths.lab_dir() / "ssh_config",
        ca_cert=paths.lab_ca_bundle(),
        secrets=_lab_secrets(),
    )
    rc, out, err = fleet.tnoctl("deploy", "--yes")
    assert rc == 0, f"initial deploy failed (rc={rc}):\n{out}\n{err[-4000:]}"
    return fleet


@pytest.fixture(scope="session")
def backups(fleet: Fleet) -> Fleet:
    """The backup machinery of the session: `tnoctl deploy` (the `fleet` fixture) sets it up (issue 16).

    Shared by the backup, monitoring and upgrade tests (upgrades take tagged safety archives). Checks
    that the deploy left the agent on every mail and office host rather than running `backup setup`
    again (that would cost a playbook run for nothing).
    """
    for name, host in fleet.inventory.hosts.items():
        if {"mail", "office"} & set(host.groups):
            assert fleet.ssh(name, "test", "-x", "/usr/local/sbin/tno-backup", check=False).returncode == 0, name
    return fleet
