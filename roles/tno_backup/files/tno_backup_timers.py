"""Enable and start a set of systemd timers in one run, reloading systemd first when units changed.

Usage: tno_backup_timers.py [--check] [--reload] TIMER...

--reload runs ``systemctl daemon-reload`` (the role passes it when a unit file changed, so no timer
starts from a stale unit). Then every TIMER that is not both enabled and active is ``systemctl enable
--now``-ed, all in one systemctl call. Prints one line per change (done, or to do with --check, which
changes nothing); no output means nothing changed. One execution for what were two systemd_service
executions per tenant plus a daemon-reload (issue 19).
"""

from __future__ import annotations

import subprocess
import sys

ENABLED = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"}
"""`systemctl is-enabled` states with exit status 0: what Ansible's systemd_service counts as enabled."""
RUNNING = {"active", "activating", "reloading"}
"""`systemctl is-active` states Ansible's systemd_service counts as started."""


def states(verb: str, timers: list[str]) -> list[str]:
    """``systemctl VERB`` of every timer, in order (non-zero rc is expected); one call, or one per timer
    when systemctl printed nothing for some (an unknown unit writes to stderr only)."""
    out = subprocess.run(["systemctl", verb, *timers], capture_output=True, text=True).stdout.split()
    if len(out) == len(timers):
        return out
    return [(subprocess.run(["systemctl", verb, timer], capture_output=True, text=True).stdout.split() or [""])[0]
            for timer in timers]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    reload = "--reload" in argv
    timers = [arg for arg in argv if not arg.startswith("--")]
    changes: list[str] = []
    if reload:
        changes.append("daemon-reload")
        if not check:
            subprocess.run(["systemctl", "daemon-reload"], check=True)
    enabled, active = states("is-enabled", timers), states("is-active", timers)
    todo = [timer for timer, on, running in zip(timers, enabled, active, strict=True)
            if on not in ENABLED or running not in RUNNING]
    changes += [f"enable --now {timer}" for timer in todo]
    if todo and not check:
        subprocess.run(["systemctl", "enable", "--now", *todo], check=True, stdout=subprocess.DEVNULL)
    for change in changes:
        print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
