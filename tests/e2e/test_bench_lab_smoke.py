"""Benchmarks cannot rot (issue 20): the lab benchmarks run in `--smoke` mode on the session's fleet.

Each script runs in a subprocess, as `make bench-lab` runs it, against the lab the session brought up
(`fleet`: the lab communes deployed; `backups`: the backup machinery set up, which the backup benchmark
and the upgrades' safety archives need). A broken script fails its test: exit status and figure lines
are checked. bench/upgrade.py's full run builds its own 6-host lab; its smoke mode rolls the running
fleet's office hosts forward and back instead, so the fleet ends at the pinned version.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUM = r"\d+(?:\.\d+)?"

pytestmark = [pytest.mark.root, pytest.mark.lab]


def _smoke(script: str, figures: list[str], timeout: float = 900) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (f"bench/{script} --smoke exited {proc.returncode}:\n{proc.stdout}\n"
                                  f"{proc.stderr[-4000:]}")
    for pattern in figures:
        assert re.search(pattern, proc.stdout), f"bench/{script}: no line matching {pattern!r} in:\n{proc.stdout}"
    return proc.stdout


def test_deploy_overhead_smoke(fleet: Any) -> None:
    _smoke("deploy_overhead.py", [
        *(rf"round 1  {name}\s+{NUM} s" for name in ("A tnoctl deploy", "B ansible tuned", "C ansible defaults",
                                                      "AM tnoctl, mitogen", "BM tuned, mitogen", "P tnoctl plan")),
        rf"ratio A/B \(tnoctl overhead over the same tuned run\) = {NUM}",
        rf"ratio C/B \(Ansible defaults over tuned\)\s+= {NUM}",
        rf"ratio AM/BM \(tnoctl overhead, Mitogen strategy\)\s+= {NUM}",  # Mitogen over the operator + sudo path
        rf"ratio C/BM \(Ansible defaults over tuned \+ Mitogen\)\s+= {NUM}",
    ])


def test_probes_smoke(fleet: Any) -> None:
    _smoke("probes.py", [
        r"\d+ probes per round, 1 rounds per mode",
        rf"serial\s+{NUM}\s+{NUM}\s+{NUM}\s+\d+",
        rf"parallel \(\d+\)\s+{NUM}\s+{NUM}\s+{NUM}\s+\d+",
        rf"ratio parallel/serial: {NUM}x",
    ])


def test_backup_smoke(backups: Any) -> None:
    _smoke("backup.py", [
        r"tenant [a-z0-9-]+: 2 MiB of mail added to ",
        rf"full backup \(tnoctl backup run\)\s+{NUM}s",
        rf"incremental, no change \(tnoctl\)\s+{NUM}s\s+{NUM}% of full",
        rf"raw borg create, same tree\s+{NUM}s",
        rf"backup drill \(extract \+ manifest\)\s+{NUM}s\s+{NUM}x raw extract \(goal <= 2x\); rc 0",
        r"cleanup: bench messages expunged, fresh backup rc 0",
    ])


def test_upgrade_smoke(backups: Any) -> None:
    out = _smoke("upgrade.py", [
        rf"upgrade of \d+ office hosts \(t_host = {NUM} s",
        # batch, version (stand-in versions carry a Debian revision), wall, slowest, CPU/host, hosts CPU, efficiency
        rf"(?m)^\s+1\s+24\.04\.11\.1-1\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}$",
        r"goal >= 0.8 for every batch size",
    ], timeout=1200)
    assert "lab up with" not in out, "smoke mode must use the running lab, not build its own"
    for host in ("office1", "office2"):
        installed = backups.ssh(host, "dpkg-query", "-W", "-f", "${Version}", "coolwsd").stdout.strip()
        assert installed == backups.office_version, f"{host} left at {installed}, not the pinned version"
