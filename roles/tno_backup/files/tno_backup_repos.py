"""Initialise a host's missing borg repositories and remove the borgmatic configs of departed tenants.

Usage: tno_backup_repos.py [--check] COMPONENT CONFDIR STATEDIR UNIT...

COMPONENT is ``mail`` or ``office``; UNIT the unit keys this host serves for it. For every UNIT without
STATEDIR/UNIT.initialised: ``borgmatic --config CONFDIR/UNIT.yaml init --encryption repokey-blake2``
(borgmatic skips an existing repository), then the marker (empty, 0644, root's). Then every config of
this component in CONFDIR (office: ``*.office.yaml``; mail: the other ``*.yaml``) whose unit is not
listed is removed (its archives stay on the backup host). Prints one JSON object: ``changes`` (done,
or to do with --check, which changes nothing) and ``systemd`` (whether /run/systemd/system exists, so
the role schedules with systemd or cron without one more execution). One execution for what were a
stat, a command and a copy per tenant plus a find and a file per departed tenant (issue 19).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ours(name: str, component: str) -> bool:
    """Whether CONFDIR entry ``name`` is a config of ``component``."""
    if name.startswith(".") or not name.endswith(".yaml"):
        return False
    return name.endswith(".office.yaml") == (component == "office")


def init_missing(confdir: Path, statedir: Path, units: list[str], check: bool) -> list[str]:
    """Initialise the repositories of the units that have no marker yet; return the changes."""
    changes: list[str] = []
    for unit in units:
        marker = statedir / f"{unit}.initialised"
        if marker.exists():
            continue
        changes.append(f"init {unit}")
        if check:
            continue
        proc = subprocess.run(["borgmatic", "--config", str(confdir / f"{unit}.yaml"), "init",
                               "--encryption", "repokey-blake2"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
            raise SystemExit(f"tno_backup_repos: borgmatic init of {unit} failed (rc {proc.returncode})")
        statedir.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")
        os.chown(marker, 0, 0)
        marker.chmod(0o644)
    return changes


def remove_departed(confdir: Path, component: str, units: list[str], check: bool) -> list[str]:
    """Remove this component's configs of units no longer listed; return the changes."""
    wanted = {f"{unit}.yaml" for unit in units}
    changes: list[str] = []
    if not confdir.is_dir():
        return changes
    for entry in sorted(confdir.iterdir()):
        if entry.is_file() and ours(entry.name, component) and entry.name not in wanted:
            changes.append(f"remove {entry}")
            if not check:
                entry.unlink()
    return changes


def main(argv: list[str]) -> int:
    check = bool(argv) and argv[0] == "--check"
    args = argv[1:] if check else argv
    if len(args) < 3 or args[0] not in ("mail", "office"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    component, confdir, statedir, units = args[0], Path(args[1]), Path(args[2]), args[3:]
    changes = init_missing(confdir, statedir, units, check)
    changes += remove_departed(confdir, component, units, check)
    print(json.dumps({"changes": changes, "systemd": Path("/run/systemd/system").is_dir()}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
