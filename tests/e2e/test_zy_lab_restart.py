"""`lab restart-host`: a host keeps its disk across a restart; `--wipe` gives a brand-new machine
(new host keys) that strict host-key checking accepts because known_hosts is rewritten.

Named to run after every test that uses the deployed fleet and just before test_zz_lab_recovery
(which takes the lab down): the wiped mail2 is not rebuilt here. A later session's `fleet` and
`backups` fixtures (deploy + backup setup) rebuild it, as they would any fresh host.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

from tnoctl.lab.lab import Lab

pytestmark = [pytest.mark.root, pytest.mark.lab]

HOST = "mail2"


def ssh(lab: Lab, command: str) -> str:
    """Run a shell ``command`` as root on the host: OpenSSH as the operator account, then ``sudo -n``."""
    remote = shlex.join(["sudo", "-n", "sh", "-c", command])
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config_path), HOST, remote],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _keys(lab: Lab) -> set[str]:
    return {line for line in lab.known_hosts_path.read_text().splitlines() if line.startswith(f"{HOST},")}


def test_restart_keeps_the_disk_and_wipe_makes_a_new_machine(lab: Lab) -> None:
    ssh(lab, "echo kept > /root/marker")
    keys = _keys(lab)
    lab.restart_host(HOST)
    assert ssh(lab, "cat /root/marker; systemctl is-system-running") == "kept\nrunning"
    assert _keys(lab) == keys

    lab.restart_host(HOST, wipe=True)
    assert ssh(lab, "test ! -e /root/marker && systemctl is-system-running") == "running"
    new_keys = _keys(lab)
    assert len(new_keys) == 2 and not new_keys & keys
    assert {s.name: s.state for s in lab.status()}[HOST] == "running"
