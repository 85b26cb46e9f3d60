"""Ensure one backup SSH key per unit on a mail or office host and print the public halves (one run).

Usage: tno_backup_keys.py [--check] HOSTNAME KEYDIR UNIT...

For every UNIT (a tenant's unit key, e.g. ``givors`` or ``givors.office``): KEYDIR/UNIT (ed25519, no
passphrase, comment ``tno-backup:HOSTNAME:UNIT``) is generated only when missing; KEYDIR (mode 0700,
root's) is created first. Prints one JSON object: ``changes`` (what was done, or would be with --check)
and ``public`` (UNIT -> public key line, for every key that exists). --check changes nothing. Replaces
one ssh-keygen and one slurp execution per tenant (issue 19). Runs on the host (Python 3 + ssh-keygen).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ensure_dir(keydir: Path, check: bool) -> list[str]:
    """KEYDIR exists, root's, mode 0700; return the changes."""
    if not keydir.is_dir():
        if not check:
            keydir.mkdir(parents=True, mode=0o700)
            os.chown(keydir, 0, 0)
            keydir.chmod(0o700)
        return [f"create {keydir}"]
    st = keydir.stat()
    if (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o700):
        return []
    if not check:
        os.chown(keydir, 0, 0)
        keydir.chmod(0o700)
    return [f"owner/mode {keydir}"]


def ensure_key(keydir: Path, host: str, unit: str, check: bool) -> tuple[list[str], str | None]:
    """One unit's key pair; return (changes, public key line or None when it does not exist)."""
    private, public = keydir / unit, keydir / f"{unit}.pub"
    changes: list[str] = []
    if not private.exists():
        changes.append(f"generate {private}")
        if check:
            return changes, None
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"tno-backup:{host}:{unit}",
                        "-f", str(private)], check=True, stdin=subprocess.DEVNULL)
    elif not public.exists():
        changes.append(f"write {public}")
        line = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], check=True, capture_output=True,
                              text=True).stdout.strip()
        if check:
            return changes, line
        public.write_text(f"{line} tno-backup:{host}:{unit}\n")
    return changes, public.read_text().strip()


def main(argv: list[str]) -> int:
    check = bool(argv) and argv[0] == "--check"
    args = argv[1:] if check else argv
    if len(args) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, keydir, units = args[0], Path(args[1]), args[2:]
    changes = ensure_dir(keydir, check)
    public: dict[str, str] = {}
    for unit in units:
        if "/" in unit or unit.startswith("."):
            print(f"tno_backup_keys: bad unit key {unit!r}", file=sys.stderr)
            return 2
        unit_changes, line = ensure_key(keydir, host, unit, check)
        changes.extend(unit_changes)
        if line:
            public[unit] = line
    print(json.dumps({"changes": changes, "public": public}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
