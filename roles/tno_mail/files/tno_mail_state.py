"""Read what the mail role needs to know about the host, in one run (read-only; issue 19).

Usage: tno_mail_state.py [--account NAME] [--exists PATH]... PACKAGE...

Prints one JSON object: ``dovecot_version`` (first word of ``dovecot --version``; the role picks the
2.3 or 2.4 configuration syntax from it), ``resolv_conf`` (the text of /etc/resolv.conf: whether the
host has a resolver decides Rspamd's DNS settings), ``installed`` (those of the PACKAGEs dpkg
has installed: the OpenDKIM packages to retire), ``account`` (the user NAME's uid, primary gid, home and
shell, and the gid of the group NAME, each null when missing: the role's `group` and `user` tasks run
only when they differ from what it wants) and ``exists`` (PATH -> whether it exists, a symbolic link
included: nginx's default site, removed only when present). One execution for what were six
(`command`, `slurp`, `package_facts`, `group`, `user`, `file`). Fails with one line on stderr when
Dovecot is missing or does not answer.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
NOT_INSTALLED = {"n", "c"}
"""Second letter of dpkg's db:Status-Abbrev for a package that is not (or only its conffiles) installed."""


def installed(packages: list[str]) -> list[str]:
    """The ``packages`` dpkg has installed (any state but not-installed and config-files), in order."""
    if not packages:
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages],
                         capture_output=True, text=True).stdout  # rc 1 when one is unknown: expected
    status = {fields[0]: fields[1] for fields in (line.split() for line in out.splitlines()) if len(fields) > 1}
    return [name for name in packages if len(status.get(name, "")) > 1 and status[name][1] not in NOT_INSTALLED]


def dovecot_version() -> str:
    """First word of ``dovecot --version``."""
    try:
        done = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"tno_mail_state: dovecot --version failed: {exc}") from None
    words = done.stdout.split()
    if not words:
        raise SystemExit("tno_mail_state: dovecot --version printed nothing")
    return words[0]


def account(name: str) -> dict[str, object]:
    """The user ``name`` (uid, gid, home, shell) and the group ``name`` (gid), each None when missing."""
    try:
        user = pwd.getpwnam(name)
        user_info: dict[str, object] | None = {"uid": user.pw_uid, "gid": user.pw_gid, "home": user.pw_dir,
                                               "shell": user.pw_shell}
    except KeyError:
        user_info = None
    try:
        group_gid: int | None = grp.getgrnam(name).gr_gid
    except KeyError:
        group_gid = None
    return {"user": user_info, "group_gid": group_gid}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tno_mail_state.py")
    parser.add_argument("--account", help="user and group to describe (the vmail account)")
    parser.add_argument("--exists", action="append", default=[], metavar="PATH", help="path to test")
    parser.add_argument("packages", nargs="*")
    args = parser.parse_args(argv)
    resolv = RESOLV_CONF.read_text(errors="replace") if RESOLV_CONF.exists() else ""
    print(json.dumps({"dovecot_version": dovecot_version(), "resolv_conf": resolv,
                      "installed": installed(args.packages),
                      "account": account(args.account) if args.account else None,
                      "exists": {path: os.path.lexists(path) for path in args.exists}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
