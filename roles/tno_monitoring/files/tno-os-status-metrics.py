#!/usr/bin/python3
"""Pending Debian updates and pending reboot, for node_exporter's textfile collector (role tno_monitoring).

Why: `tnoctl upgrade os` applies updates in gated waves but never reboots; a kernel, libc or systemd
update leaves /var/run/reboot-required behind (written by the packages' postinst scripts), and the
TnoRebootRequired alert must see it until someone reboots in the tenants' window. The file lives on a
tmpfs, so after a reboot it is gone and the next run (at boot, then every interval) reports 0.

Metrics (gauges): tno_os_reboot_required (1 when /var/run/reboot-required exists),
tno_os_upgrades_pending{origin="security"|"other"} (from `apt-get -s upgrade` on the package index as
last refreshed, e.g. by tnoctl's pre-flight: this never runs apt-get update), and
tno_os_status_last_run_timestamp_seconds. The file is replaced atomically (temp file + rename).

Usage: tno-os-status-metrics --out DIR/tno_os.prom
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

REBOOT_FLAG = "/var/run/reboot-required"
SIMULATE = ["apt-get", "-s", "-q", "upgrade"]


def count_pending(text: str) -> dict[str, int]:
    """``apt-get -s upgrade`` output -> upgrades per origin: security when the candidate's archive is *-security."""
    counts = {"security": 0, "other": 0}
    for line in text.splitlines():
        words = line.split(" ", 2)  # "Inst pkg [installed] (candidate origins)"; a new install has no [installed]
        if len(words) < 3 or words[0] != "Inst" or not words[2].startswith("["):
            continue
        candidate = line.split("(", 1)[-1]
        counts["security" if "-security" in candidate else "other"] += 1
    return counts


def render(reboot: bool, pending: dict[str, int] | None, now: float) -> str:
    """The textfile content (pending is None when apt-get failed: the gauge is left out, not faked)."""
    lines = ["# HELP tno_os_reboot_required 1 when the host needs a reboot (/var/run/reboot-required exists).",
             "# TYPE tno_os_reboot_required gauge", f"tno_os_reboot_required {int(reboot)}"]
    if pending is not None:
        lines += ["# HELP tno_os_upgrades_pending Debian packages apt would upgrade, by origin of the candidate.",
                  "# TYPE tno_os_upgrades_pending gauge"]
        lines += [f'tno_os_upgrades_pending{{origin="{k}"}} {v}' for k, v in sorted(pending.items())]
    lines += ["# HELP tno_os_status_last_run_timestamp_seconds When these OS status metrics were written.",
              "# TYPE tno_os_status_last_run_timestamp_seconds gauge",
              f"tno_os_status_last_run_timestamp_seconds {now:.0f}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the .prom file to write (atomically)")
    args = parser.parse_args()
    env = dict(os.environ, LC_ALL="C")
    result = subprocess.run(SIMULATE, capture_output=True, text=True, env=env, check=False)
    pending = count_pending(result.stdout) if result.returncode == 0 else None
    tmp = f"{args.out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(render(os.path.exists(REBOOT_FLAG), pending, time.time()))
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
