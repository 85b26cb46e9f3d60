"""Acceptance 4 of the lab issue: the local signed apt repository, used by hand on a lab host.

Runs on **backup1**, a host on which no role deploys coolwsd, so the fleet deploy is unaffected; the
package, source line and keyring are purged at the end anyway. What the office role will do (install
the keyring in /etc/apt/keyrings, add a signed-by source line) is done here by hand.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tnoctl import paths
from tnoctl.lab.aptrepo import KEYRING_NAME

pytestmark = [pytest.mark.root, pytest.mark.lab]

HOST = "backup1"
SOURCE_LINE = "deb [signed-by=/etc/apt/keyrings/tno-lab.gpg] http://198.18.0.1:8081 tno-lab main\n"
APT_OPTS = (
    "-o Acquire::http::Proxy::198.18.0.1=DIRECT -o DPkg::Lock::Timeout=300"
    " -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)
# Waits for the service to answer (readiness, bounded by attempts), then prints "<status> <body>".
FETCH = r"""python3 - "$0" <<'EOF'
import sys, time, urllib.error, urllib.request
url = "http://127.0.0.1:9980" + sys.argv[1]
for attempt in range(100):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            print(resp.status, resp.read().decode()); break
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode()); break
    except OSError:
        time.sleep(0.2)
else:
    print("000 no answer")
EOF"""


def ssh(lab: Any, command: str, *, stdin: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_path), HOST, f"sudo -n sh -c {shlex.quote(command)}"],  # as the operator
        input=stdin, capture_output=True, check=False,
    )
    out = proc.stdout.decode(errors="replace")
    if check:
        assert proc.returncode == 0, f"{command}\n{out}\n{proc.stderr.decode(errors='replace')}"
    return out


def fetch(lab: Any, path: str) -> tuple[int, str]:
    out = ssh(lab, f"bash -c {_quote(FETCH)} {path}")
    status, _, body = out.partition(" ")
    return int(status), body


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@pytest.fixture()
def standin_host(lab: Any) -> Any:
    """backup1 with the lab repository trusted (keyring + signed-by source); cleaned up afterwards."""
    keyring = Path(paths.lab_dir()) / "apt" / KEYRING_NAME
    ssh(lab, "install -d -m 0755 /etc/apt/keyrings && cat > /etc/apt/keyrings/tno-lab.gpg",
        stdin=keyring.read_bytes())
    ssh(lab, "cat > /etc/apt/sources.list.d/tno-lab.list", stdin=SOURCE_LINE.encode())
    try:
        yield lab
    finally:
        ssh(lab, f"DEBIAN_FRONTEND=noninteractive apt-get purge -y {APT_OPTS} coolwsd coolwsd-kit", check=False)
        ssh(lab, "rm -f /etc/apt/sources.list.d/tno-lab.list /etc/apt/keyrings/tno-lab.gpg"
                 " /var/lib/apt/lists/198.18.0.1:8081_*", check=False)


def install(lab: Any, version: str, *extra: str) -> None:
    """coolwsd and its lockstep companion at one version (coolwsd depends on coolwsd-kit (= version))."""
    ssh(lab, f"DEBIAN_FRONTEND=noninteractive apt-get install -y {APT_OPTS} {' '.join(extra)} "
             f"coolwsd={version} coolwsd-kit={version}")


def test_install_upgrade_broken_and_rollback(standin_host: Any) -> None:
    lab = standin_host
    update = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_path), HOST, f"sudo -n apt-get update {APT_OPTS}"],
        capture_output=True, text=True, check=False,
    )
    assert update.returncode == 0, update.stderr
    assert "tno-lab InRelease" in update.stdout
    assert "NO_PUBKEY" not in update.stderr and "not signed" not in update.stderr, update.stderr
    # signature checking is on: the InRelease index was verified and kept, and nothing allows insecure repos
    assert ssh(lab, "ls /var/lib/apt/lists/ | grep -c '198.18.0.1:8081_dists_tno-lab_InRelease'").strip() == "1"
    assert 'Acquire::AllowInsecureRepositories "0";' in ssh(lab, "apt-config dump")
    assert ssh(lab, "grep -rl 'trusted=yes' /etc/apt/sources.list* || true").strip() == ""
    policy = ssh(lab, "apt-cache policy coolwsd")
    for version in ("24.04.10.1-1", "24.04.11.1-1", "24.04.12.1-1", "24.04.13.1-1"):
        assert version in policy

    install(lab, "24.04.10.1-1")
    assert ssh(lab, "systemctl is-active coolwsd").strip() == "active"
    assert ssh(lab, "ps -o user= -p $(systemctl show -p MainPID --value coolwsd)").strip() == "cool"
    status, body = fetch(lab, "/hosting/capabilities")
    assert status == 200, body
    caps = json.loads(body)
    assert caps["productVersion"] == "24.04.10.1"
    assert "not Collabora Online" in caps["productName"]
    assert fetch(lab, "/") == (200, "OK\n")

    install(lab, "24.04.12.1-1")  # the broken build: installs and starts ...
    assert ssh(lab, "dpkg-query -W -f '${Version}' coolwsd") == "24.04.12.1-1"
    assert ssh(lab, "systemctl is-active coolwsd").strip() == "active"
    status, body = fetch(lab, "/hosting/capabilities")  # ... but its health endpoints fail
    assert status == 500 and "kit process failed to start" in body
    assert fetch(lab, "/hosting/discovery")[0] == 500
    assert fetch(lab, "/")[0] == 503
    assert ssh(lab, "systemctl show -p NRestarts --value coolwsd").strip() == "0"  # not a crash loop

    install(lab, "24.04.11.1-1", "--allow-downgrades")  # rollback to the good version
    status, body = fetch(lab, "/hosting/capabilities")
    assert status == 200 and json.loads(body)["productVersion"] == "24.04.11.1"

    ssh(lab, f"DEBIAN_FRONTEND=noninteractive apt-get purge -y {APT_OPTS} coolwsd coolwsd-kit")
    assert ssh(lab, "getent passwd cool", check=False) == ""
    assert ssh(lab, "test -e /etc/coolwsd/coolwsd.xml && echo present || echo gone").strip() == "gone"
