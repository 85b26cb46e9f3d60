"""Lab acceptance 2 and 3: real systemd + strict-host-key SSH on every host; isolation between hosts.

Needs root and the session `lab` fixture (tests/e2e/conftest.py).
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.lab import etchosts
from tnoctl.lab.lab import Lab

pytestmark = [pytest.mark.root, pytest.mark.lab]

HOSTS = ["mail1", "mail2", "office1", "office2", "backup1"]
PACKAGE = "hello"  # GNU hello: small, and not something the machine or the base image has


def ssh(lab: Lab, host: str, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run shell `command` as root on `host`: lab ssh_config (operator account, plus extra options), sudo -n."""
    argv = ["ssh", "-F", str(lab.ssh_config_path), *extra, host, f"sudo -n sh -c {shlex.quote(command)}"]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("host", HOSTS)
def test_host_runs_real_systemd_over_strict_ssh(lab: Lab, host: str) -> None:
    proc = ssh(lab, host, "hostname; systemctl is-system-running --wait; cat /proc/1/comm")
    assert proc.returncode == 0, proc.stderr
    name, state, pid1 = proc.stdout.split()
    failed = ssh(lab, host, "systemctl --failed --no-legend --plain").stdout.strip()
    assert (name, pid1) == (host, "systemd")
    assert state == "running", f"{host}: systemd is {state}; failed units: {failed or 'none'}"


def test_ssh_config_keeps_host_key_checking_strict(lab: Lab) -> None:
    text = lab.ssh_config_path.read_text()
    assert "StrictHostKeyChecking yes" in text
    assert f"UserKnownHostsFile {lab.known_hosts_path}" in text
    assert "GlobalKnownHostsFile /dev/null" in text
    known = lab.known_hosts_path.read_text().splitlines()
    assert {line.split()[0] for line in known} == {f"{h},{a}" for h, a in zip(HOSTS, _addresses(), strict=True)}


def _addresses() -> list[str]:
    return [f"198.18.0.{n}" for n in range(11, 16)]


def test_altered_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    """Replace mail1's recorded keys by other keys of the same types: ssh must refuse to connect."""
    lines = []
    for line in lab.known_hosts_path.read_text().splitlines():
        names, key_type, _ = line.split()
        if names.startswith("mail1,"):
            kind = "ed25519" if key_type == "ssh-ed25519" else "ecdsa"
            fake = tmp_path / f"fake_{kind}"
            subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(fake)], check=True)
            line = f"{names} {' '.join(fake.with_suffix('.pub').read_text().split()[:2])}"
        lines.append(line)
    altered = tmp_path / "known_hosts"
    altered.write_text("\n".join(lines) + "\n")
    proc = ssh(lab, "mail1", "true", "-o", f"UserKnownHostsFile={altered}", "-o", "LogLevel=ERROR")
    assert proc.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr
    assert ssh(lab, "mail2", "true", "-o", f"UserKnownHostsFile={altered}").returncode == 0


def test_unknown_host_key_is_refused_not_learned(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = ssh(lab, "office1", "true", "-o", f"UserKnownHostsFile={empty}")
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr
    assert empty.read_text() == ""


def test_package_installed_on_mail1_is_absent_elsewhere(lab: Lab) -> None:
    assert shutil.which(PACKAGE) is None, f"precondition: the machine itself must not have {PACKAGE}"
    install = ssh(lab, "mail1", f"apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q {PACKAGE}")
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    try:
        assert ssh(lab, "mail1", f"dpkg -s {PACKAGE} && {PACKAGE}").returncode == 0
        assert ssh(lab, "mail2", f"dpkg -s {PACKAGE}").returncode == 1
        machine = subprocess.run(["dpkg", "-s", PACKAGE], capture_output=True, check=False)
        assert machine.returncode == 1
    finally:
        ssh(lab, "mail1", f"apt-get purge -y -q {PACKAGE}")


def test_hosts_see_only_their_own_processes(lab: Lab) -> None:
    start = ssh(lab, "mail1", "systemd-run --unit tno-isolation-marker sleep 4242")
    assert start.returncode == 0, start.stderr
    try:
        # [s]leep: the pattern must not match the sudo/sh command line that carries it
        assert ssh(lab, "mail1", "pgrep -f '[s]leep 4242'").returncode == 0
        assert ssh(lab, "mail2", "pgrep -f '[s]leep 4242'").returncode == 1
        ps = ssh(lab, "mail2", "ps -e -o pid=,comm=").stdout.split("\n")
        comms = {line.split()[1] for line in ps if line.strip()}
        assert ps[0].split() == ["1", "systemd"]
        assert not comms & {"systemd-nspawn", "apt-cacher-ng", "sleep"}
    finally:
        ssh(lab, "mail1", "systemctl stop tno-isolation-marker")


@pytest.mark.parametrize("host", ["mail2", "office1"])
def test_hosts_cannot_route_outside_the_lab(lab: Lab, host: str) -> None:
    for outside in ("203.0.113.1", "10.0.0.1", "192.168.1.1", "172.16.0.1"):
        proc = ssh(lab, host, f"ip route get {outside}")
        assert proc.returncode != 0 and "unreachable" in proc.stderr, outside
    assert ssh(lab, host, "ip route get 198.18.0.11").returncode == 0
    resolvers = [line.split()[1] for line in ssh(lab, host, "cat /etc/resolv.conf").stdout.splitlines()
                 if line.startswith("nameserver")]
    assert resolvers == ["198.18.0.1"]  # the lab's own DNS (knotd on the bridge), nothing else


def test_etc_hosts_and_lab_ca_are_installed(lab: Lab) -> None:
    expected = etchosts.render_hosts_file(lab.topology)
    assert "office." in expected
    for host in ("office2", "backup1"):
        assert ssh(lab, host, "cat /etc/hosts").stdout == expected
    ca = (lab.lab_dir / "ca" / "ca.crt").read_text()
    assert ssh(lab, "mail1", "cat /etc/ssl/certs/tno-lab-ca.pem").stdout == ca


def test_status_json_lists_every_host_running(lab: Lab) -> None:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=paths.LAB_INVENTORY, stdout=out, stderr=err)
    assert main(["lab", "status", "--json"], app) == 0, err.getvalue()
    assert json.loads(out.getvalue()) == [
        {"name": h, "address": a, "state": "running"} for h, a in zip(HOSTS, _addresses(), strict=True)
    ]


def test_up_again_is_a_noop(lab: Lab) -> None:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=paths.LAB_INVENTORY, stdout=out, stderr=err)
    assert main(["lab", "up"], app) == 0
    assert "already up" in err.getvalue()
