"""The lab's SSH client side: key pair, known_hosts (from the hosts' own key files), ssh_config.

known_hosts is written straight from each host's `etc/ssh/ssh_host_*_key.pub` in its overlay
upper dir — never ssh-keyscan — so there is no trust on first use and StrictHostKeyChecking
stays on for Ansible and tnoctl. The config logs in as the operator account (``tnoops``, with
passwordless sudo), never root: lab hosts refuse root logins, as production hosts do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tnoctl.lab.base import OPERATOR
from tnoctl.lab.cmd import run
from tnoctl.lab.topology import LabHost

KEY_NAME = "id_ed25519"


def ensure_key(lab_dir: Path) -> Path:
    """Create the lab's throw-away operator login key once; return the private key path."""
    key = lab_dir / KEY_NAME
    if not key.is_file() or not key.with_suffix(".pub").is_file():
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tnoctl-lab-throwaway", "-f", str(key)])
    key.chmod(0o600)
    return key


def known_hosts_lines(host: LabHost, pubkey_texts: Iterable[str]) -> list[str]:
    """`name,address type key` lines for one host from the text of its *.pub files (pure)."""
    lines = []
    for text in pubkey_texts:
        fields = text.split()
        if len(fields) >= 2:
            lines.append(f"{host.name},{host.address} {fields[0]} {fields[1]}")
    return lines


def host_pubkeys(etc_ssh: Path) -> list[str]:
    """Texts of the host's public host keys (sorted by file name for stable output)."""
    return [path.read_text() for path in sorted(etc_ssh.glob("ssh_host_*_key.pub"))]


def render_ssh_config(hosts: Iterable[LabHost], lab_dir: Path) -> str:
    """ssh_config usable as `ssh -F PATH mail1` with strict host-key checking (pure)."""
    hosts = list(hosts)
    out = ["# written by tnoctl lab; use as: ssh -F THIS_FILE mail1", ""]
    for host in hosts:
        out += [f"Host {host.name} {host.name}.lab.test {host.address}", f"  HostName {host.address}", ""]
    patterns = " ".join(h.name for h in hosts) + " *.lab.test 198.18.0.*"
    out += [
        f"Host {patterns}",
        f"  User {OPERATOR}",
        f"  IdentityFile {lab_dir / KEY_NAME}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {lab_dir / 'known_hosts'}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  HashKnownHosts no",
        "  CheckHostIP no",
        "  GSSAPIAuthentication no",
        "  PasswordAuthentication no",
        "  KexAlgorithms curve25519-sha256",
        "  ConnectTimeout 10",
        "  LogLevel ERROR",
        "",
    ]
    return "\n".join(out)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` via a temp file + rename, with `mode`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
