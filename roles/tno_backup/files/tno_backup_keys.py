"""Ensure one backup SSH key per unit on a mail or office host and print the public halves (one run).

Usage: tno_backup_keys.py [--check] [--package NAME]... HOSTNAME KEYDIR UNIT...

For every UNIT (a tenant's unit key, e.g. ``givors`` or ``givors.office``): KEYDIR/UNIT (ed25519, no
passphrase, comment ``tno-backup:HOSTNAME:UNIT``) is generated only when missing; KEYDIR (mode 0700,
root's) is created first. Prints one JSON object: ``changes`` (what was done, or would be with --check)
and ``public`` (UNIT -> public key line, for every key that exists). --check changes nothing. Replaces
one ssh-keygen and one slurp execution per tenant (issue 19). Runs on the host (Python 3 + ssh-keygen).
With --package, also ``packages_missing``: those of the NAMEs dpkg has not installed, read-only (the
client side's `apt` runs only then: one module execution less per host on a no-op, issue 19). Always
``systemd``: whether /run/systemd/system exists (the client side writes its systemd units in its one
tno_files call then, or a cron file).
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


def packages_missing(packages: list[str]) -> list[str]:
    """Those of ``packages`` dpkg has not installed (status ``install ok installed``), in order.

    Also in the other role's host script: ansible.builtin.script ships one file, nothing to import."""
    if not packages:
        return []
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Status}\n", *packages],
                             capture_output=True, text=True, check=False).stdout  # rc 1: one is unknown
    except OSError:
        return list(packages)
    installed = {f[0] for f in (line.split("\t") for line in out.splitlines())
                 if len(f) == 2 and f[1].split()[-1:] == ["installed"]}
    return [name for name in packages if name not in installed]


def main(argv: list[str]) -> int:
    check = bool(argv) and argv[0] == "--check"
    args = argv[1:] if check else argv
    packages: list[str] = []
    while len(args) >= 2 and args[0] == "--package":
        packages.append(args[1])
        args = args[2:]
    if len(args) < 2 or "--package" in args[:1]:
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
    report: dict[str, object] = {"changes": changes, "public": public,
                                 "systemd": Path("/run/systemd/system").is_dir()}
    if packages:
        report["packages_missing"] = packages_missing(packages)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
