"""Enable and start a set of systemd units in one run, reloading systemd first when units changed.

Usage: tno_units.py [--check] [--reload] [--reload-if-stale UNIT]... [--wait PORT[:TIMEOUT]]... UNIT...

--reload runs ``systemctl daemon-reload`` (a role passes it when a unit file changed, so no unit starts
from a stale file). --reload-if-stale runs it too when systemd says one of those UNITs (or of the UNITs
to start) was changed on disk since it was loaded (``NeedDaemonReload=yes``): a unit file written by an
earlier run that failed before this script reloaded is still picked up. Then every UNIT (service or
timer) that is not both enabled and active is ``systemctl enable --now``-ed, all in one systemctl call.
--wait then waits until 127.0.0.1:PORT accepts a TCP connection (TIMEOUT seconds, default 300), as
`wait_for` did; with --check it waits only when nothing was to be started (a unit not started in check
mode has nothing listening yet).
Prints one line per change (done, or to do with --check, which changes nothing); no output means
nothing changed. One execution for what were one systemd_service execution per unit, a daemon-reload
and a wait_for (issue 19). Shared by the roles through symlinks to roles/tno_common/files/tno_units.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

ENABLED = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"}
"""`systemctl is-enabled` states with exit status 0: what Ansible's systemd_service counts as enabled."""
RUNNING = {"active", "activating", "reloading"}
"""`systemctl is-active` states Ansible's systemd_service counts as started."""
DEFAULT_TIMEOUT = 300.0


def states(verb: str, units: list[str]) -> list[str]:
    """``systemctl VERB`` of every unit, in order (non-zero rc is expected); one call, or one per unit
    when systemctl printed nothing for some (an unknown unit writes to stderr only)."""
    out = subprocess.run(["systemctl", verb, *units], capture_output=True, text=True).stdout.split()
    if len(out) == len(units):
        return out
    return [(subprocess.run(["systemctl", verb, unit], capture_output=True, text=True).stdout.split() or [""])[0]
            for unit in units]


def stale(units: list[str]) -> bool:
    """Whether systemd reports ``NeedDaemonReload=yes`` for one of ``units`` (one systemctl call)."""
    if not units:
        return False
    out = subprocess.run(["systemctl", "show", "--property", "NeedDaemonReload", "--value", *units],
                         capture_output=True, text=True).stdout.split()
    return "yes" in out


def wait_for_port(port: int, timeout: float) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; SystemExit naming the port after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise SystemExit(f"tno_units: nothing listens on 127.0.0.1:{port} after {timeout:g} s") from None
            time.sleep(0.5)


def parse(argv: list[str]) -> tuple[bool, bool, list[str] | None, list[tuple[int, float]], list[str]]:
    """(check, reload, --reload-if-stale's units or None, [(port, timeout)], units) from the command line."""
    check = reload = False
    waits: list[tuple[int, float]] = []
    units: list[str] = []
    watched: list[str] | None = None
    args = iter(argv)
    for arg in args:
        if arg == "--check":
            check = True
        elif arg == "--reload":
            reload = True
        elif arg == "--reload-if-stale":
            watched = [*(watched or []), next(args)]
        elif arg == "--wait":
            port, _, timeout = next(args).partition(":")
            waits.append((int(port), float(timeout) if timeout else DEFAULT_TIMEOUT))
        elif arg:
            units.append(arg)
    return check, reload, watched, waits, units


def main(argv: list[str]) -> int:
    check, reload, watched, waits, units = parse(argv)
    if watched is not None and not reload:
        reload = stale([*watched, *units])
    changes: list[str] = []
    if reload:
        changes.append("daemon-reload")
        if not check:
            subprocess.run(["systemctl", "daemon-reload"], check=True)
    todo: list[str] = []
    if units:
        enabled, active = states("is-enabled", units), states("is-active", units)
        todo = [unit for unit, on, running in zip(units, enabled, active, strict=True)
                if on not in ENABLED or running not in RUNNING]
    changes += [f"enable --now {unit}" for unit in todo]
    if todo and not check:
        subprocess.run(["systemctl", "enable", "--now", *todo], check=True, stdout=subprocess.DEVNULL)
    if not (check and todo):
        for port, timeout in waits:
            wait_for_port(port, timeout)
    for change in changes:
        print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
