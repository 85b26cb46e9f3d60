#!/usr/bin/python3
"""Set Rspamd's controller password from the one on stdin (installed on mail hosts by role tno_mail).

Why a script: Rspamd wants the password hashed with its own scheme (catena, ``$2$salt$hash``), which
only Rspamd computes; ``rspamadm pw`` takes the password on its command line (visible to every local
user in ``ps``) or from a terminal. Here the password arrives on stdin (Ansible's ``stdin:``, task
``no_log``) and is hashed by ``rspamadm lua`` with Rspamd's ``rspamd_cryptobox.pbkdf``, the script
fed on stdin too: the password is never in an argv, an environment or an output line.

Writes two files:
- ``--plain``: the password itself, root:root 0600, for local clients that must authenticate (role
  tno_monitoring's metrics timer runs as root and sends it in the ``Password:`` header; an operator
  on the host reads it with sudo). The plaintext is on the host anyway for those clients, which is
  also what makes the run idempotent without a verifier: when ``--plain`` already holds this
  password and ``--include`` holds a hash, nothing is rewritten (a new salt each run would restart
  Rspamd at every deploy).
- ``--include``: ``password`` and ``enable_password`` (the same hash: one secret for read and write
  commands), mode 0640 group ``--group``, included by tno_mail's local.d/worker-controller.inc.

Prints ``changed`` when it rewrote the files (``would change`` with ``--check``, which writes
nothing), nothing otherwise. Exit 2 on bad input, 1 when Rspamd could not hash.

Usage: tno-rspamd-controller-password [--check] --plain FILE --include FILE [--group _rspamd] < password
"""

from __future__ import annotations

import argparse
import grp
import os
import re
import subprocess
import sys
import tempfile

HASH_RE = re.compile(r"^\$2\$[a-z0-9]+\$[a-z0-9]+$")
"""Rspamd's catena hash (zbase32 salt and key), as ``rspamd_cryptobox.pbkdf`` prints it."""
INCLUDE_RE = re.compile(r'^password = "(\$2\$[a-z0-9]+\$[a-z0-9]+)";\nenable_password = "\1";\n\Z')
LUA = "local pw = io.read('*l')\nprint(require('rspamd_cryptobox').pbkdf(pw, 'catena'))\n"
"""Read the password (first stdin line), print its catena hash: Rspamd's own default scheme."""
RSPAMADM = "/usr/bin/rspamadm"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def current(plain: str, include: str, password: str) -> bool:
    """True when ``plain`` holds this password and ``include`` a well-formed hash (nothing to do)."""
    text = _read(include)
    return _read(plain) == password + "\n" and text is not None and INCLUDE_RE.search(text) is not None


def hash_password(password: str, rspamadm: str = RSPAMADM) -> str:
    """The catena hash of ``password``, computed by Rspamd (the Lua script and the password on stdin)."""
    with tempfile.TemporaryDirectory(prefix="tno-rspamd-pw.") as tmp:
        script = os.path.join(tmp, "pw.lua")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(LUA)
        done = subprocess.run([rspamadm, "lua", script], input=password + "\n", capture_output=True, text=True,
                              timeout=60, check=False)
    lines = [line.strip() for line in done.stdout.splitlines() if HASH_RE.match(line.strip())]
    if done.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"rspamadm lua exited {done.returncode} without a catena hash")
    return lines[0]


def _write(path: str, text: str, mode: int, gid: int) -> None:
    """Write atomically with owner root (the caller's uid), ``gid`` and ``mode`` set before the rename."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tno-", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, -1, gid)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None, stdin: str | None = None) -> int:
    """Converge both files; see the module docstring."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report what would change, write nothing")
    ap.add_argument("--plain", required=True, help="root-only file with the password (for local clients)")
    ap.add_argument("--include", required=True, help="Rspamd include with the hashed password")
    ap.add_argument("--group", default="_rspamd", help="group of the include file (Rspamd's)")
    ap.add_argument("--rspamadm", default=RSPAMADM, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    raw = sys.stdin.read() if stdin is None else stdin
    password = raw.splitlines()[0] if raw else ""
    if len(password) < 12 or any(c in password for c in '"\\\n\r') or not password.isprintable():
        print("the password on stdin must be one printable line of 12+ characters without quote or backslash",
              file=sys.stderr)
        return 2
    try:
        gid = grp.getgrnam(args.group).gr_gid
    except KeyError:
        print(f"--group: no group {args.group!r}", file=sys.stderr)
        return 2
    if current(args.plain, args.include, password):
        return 0
    if args.check:
        print("would change")
        return 0
    try:
        hashed = hash_password(password, args.rspamadm)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"cannot hash the controller password: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
        return 1
    _write(args.include, f'password = "{hashed}";\nenable_password = "{hashed}";\n', 0o640, gid)
    _write(args.plain, password + "\n", 0o600, os.getgid())
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
