#!/usr/bin/env python3
"""Benchmark: `tnoctl upgrade office` over N lab office hosts with batch sizes 1, 2 and N.

Builds a throw-away inventory next to the lab one (office1..officeN, one office-only commune per
host, plus mail1 and backup1 which a valid inventory needs: started, not deployed), brings the lab
up with it (the regular lab is taken down first and left down at the end), deploys the office
hosts at the pinned version and sets up their backups (each upgrade takes a safety archive
first), then rolls the office stand-in between 24.04.10.1-1 and 24.04.11.1-1, once per batch
size. For each run it prints the wall time, the controller's CPU-seconds per host upgraded (the `tnoctl`
process and every process it waited for: ansible-playbook, its workers, ssh), the lab hosts' CPU-seconds
(their cgroups' cpu.stat: on this machine the hosts share the controller's cores) and the parallel
efficiency against the CPU-bound ideal, ideal / T(b) with ideal = max(ceil(N/b) * t_host, CPU / cores),
where t_host is the mean per-host time of the batch-1 run and CPU the controller's plus the lab hosts'
CPU-seconds of that run (issue 19; goal >= 0.8). Needs root.

Usage: bench/upgrade.py [--hosts 6]

`--smoke`: no lab layout of its own: the same rollouts (batch 1, then all hosts) over the office
hosts of the running lab fleet (`make demo`, or the e2e session's fleet with its backups set up),
24.04.11.1-1 and back to the pinned 24.04.10.1-1 without touching the pin, in a temporary state dir.
The lab stays up (tests/e2e/test_bench_lab_smoke.py runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tnoctl import paths  # noqa: E402
from tnoctl.config.vault import add_secrets, new_password  # noqa: E402

VERSIONS = ("24.04.11.1-1", "24.04.10.1-1")
FIRST_ADDRESS = 21  # office hosts at 198.18.0.21.. (backup1 keeps .15)


def make_inventory(root: Path, count: int) -> Path:
    """A lab-shaped inventory with `count` office hosts, one office-only tenant each."""
    inv = root / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno", "tenants"))
    offices = {f"office{i}": {"ansible_host": f"198.18.0.{FIRST_ADDRESS + i - 1}"} for i in range(1, count + 1)}
    hosts = {"all": {"children": {
        "mail": {"hosts": {"mail1": {"ansible_host": "198.18.0.11"}}},  # the inventory needs one; not deployed
        "office": {"hosts": offices},
        "proxy": {"hosts": {name: {} for name in offices}},
        "backup": {"hosts": {"backup1": {"ansible_host": "198.18.0.15"}}},
    }}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    (inv / "tenants").mkdir()
    for i in range(1, count + 1):
        slug = f"bench-{i}"
        tenant = {
            "slug": slug, "name": f"Bench {i}", "insee": f"{69000 + i}", "domains": [f"{slug}.test"],
            "services": ["office"], "placement": {"office": f"office{i}"},
            "office": {"wopi_hosts": [f"https://cloud.{slug}.test"]},
            "maintenance_window": "Mon-Sun 00:00-24:00", "pilot": i == 1,
        }
        (inv / "tenants" / f"{slug}.yml").write_text(yaml.safe_dump(tenant, sort_keys=False, allow_unicode=True))
    # each commune's borg passphrase (the safety archive before an upgrade needs its repository)
    add_secrets(inv, inv / "vault-password",
                {f"tno_vault_borg_{f'bench-{i}'.replace('-', '_')}": new_password() for i in range(1, count + 1)})
    return inv


def children_cpu() -> float:
    """CPU-seconds (user + system) of every child process this one has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lab_cpu() -> float:
    """CPU-seconds used so far by the lab hosts: the ``usage_usec`` of each ``tno-lab-*`` cgroup (v2 cpu.stat)."""
    from tnoctl.lab.boot import CGROUP_PREFIX, cgroup_hierarchies

    total = 0
    for parent in cgroup_hierarchies(Path("/proc/self/cgroup").read_text()):
        for stat in parent.glob(f"{CGROUP_PREFIX}*/cpu.stat"):
            fields = dict(line.split() for line in stat.read_text().splitlines() if line.count(" ") == 1)
            total += int(fields.get("usage_usec", 0))
    return total / 1e6


def tnoctl(inv: Path, state: Path, *argv: str) -> tuple[float, str]:
    env = {**os.environ, "TNO_CA_FILE": str(paths.lab_ca_bundle())}  # ssh: the copy's connection.yml
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tnoctl", "--inventory", str(inv), "--state-dir", str(state),
                           *argv], capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"tnoctl {' '.join(argv)} failed ({proc.returncode})")
    return elapsed, proc.stdout


def host_seconds(state: Path, operation: str) -> dict[str, float]:
    """Per host: first step started -> finish, from the operation journal."""
    first: dict[str, float] = {}
    spans: dict[str, float] = {}
    for line in (state / "operations" / operation / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        host = event["host"]
        if not host:
            continue
        first.setdefault(host, event["time"])
        if event["step"] == "finish":
            spans[host] = event["time"] - first[host]
    return spans


Row = tuple[int, str, float, float, float, float, float]
"""batch, version, wall s, slowest host s, controller CPU-s, lab hosts' CPU-s, efficiency"""


def rollouts(inv: Path, state: Path, n: int) -> tuple[list[Row], float]:
    """Upgrade the inventory's office hosts with batch sizes 1, 2 and n; (rows, t_host)."""
    rows = []
    t_host = 0.0
    cores = os.cpu_count() or 1
    for index, batch in enumerate(dict.fromkeys((1, min(2, n), n))):
        version = VERSIONS[index % 2]
        controller0, lab0 = children_cpu(), lab_cpu()
        elapsed, _ = tnoctl(inv, state, "upgrade", "office", "--to", version, "--waves", "100%",
                            "--batch", str(batch), "--no-pin", "--yes")
        controller, hosts = children_cpu() - controller0, lab_cpu() - lab0
        _, out = tnoctl(inv, state, "upgrade", "status", "--json")
        spans = host_seconds(state, json.loads(out)["id"])
        if batch == 1:
            t_host = sum(spans.values()) / len(spans)
        ideal = max(math.ceil(n / batch) * t_host, (controller + hosts) / cores)
        rows.append((batch, version, elapsed, max(spans.values()), controller, hosts, ideal / elapsed))
        print(f"batch {batch}: {elapsed:.1f} s to {version}", flush=True)
    return rows, t_host


def own_lab(n: int) -> tuple[list[Row], float]:
    """The full benchmark: its own lab of n office hosts (the regular lab is taken down first)."""
    from tnoctl.lab.lab import Lab

    with tempfile.TemporaryDirectory(prefix="tno-bench-upgrade-") as tmp:
        inv = make_inventory(Path(tmp), n)
        state = Path(tmp) / "state"
        Lab(paths.LAB_INVENTORY).down()
        lab = Lab(inv)
        try:
            t0 = time.monotonic()
            lab.up(fresh=True)
            print(f"lab up with {n} office hosts: {time.monotonic() - t0:.1f} s", flush=True)
            offices = [f"office{i}" for i in range(1, n + 1)]
            elapsed, _ = tnoctl(inv, state, "deploy", "--yes", *[a for h in offices for a in ("--host", h)])
            print(f"deploy of {n} office hosts: {elapsed:.1f} s", flush=True)
            backup_hosts = [*offices, "backup1"]
            elapsed, _ = tnoctl(inv, state, "backup", "setup", "--yes",
                                *[a for h in backup_hosts for a in ("--host", h)])
            print(f"backup setup of {n} office hosts + backup1: {elapsed:.1f} s", flush=True)
            return rollouts(inv, state, n)
        finally:
            lab.down()


def running_lab() -> tuple[int, list[Row], float]:
    """Smoke: the office hosts of the running lab fleet; (n, rows, t_host)."""
    hosts = yaml.safe_load((paths.LAB_INVENTORY / "hosts.yml").read_text())
    n = len(hosts["all"]["children"]["office"]["hosts"])
    with tempfile.TemporaryDirectory(prefix="tno-bench-upgrade-") as tmp:
        state = Path(tmp) / "state"
        rows, t_host = rollouts(paths.LAB_INVENTORY, state, n)
        if rows[-1][1] != VERSIONS[1]:  # leave the fleet at the pinned version
            tnoctl(paths.LAB_INVENTORY, state, "upgrade", "office", "--to", VERSIONS[1], "--waves", "100%",
                   "--batch", str(n), "--no-pin", "--yes")
    return n, rows, t_host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--smoke", action="store_true", help="the running lab's office hosts, no own lab")
    args = parser.parse_args()
    if args.smoke:
        n, rows, t_host = running_lab()
    else:
        n = args.hosts
        rows, t_host = own_lab(n)
    print(f"\nupgrade of {n} office hosts (t_host = {t_host:.1f} s, mean per host at batch 1)")
    print(f"{'batch':>5} {'to':>12} {'wall s':>7} {'slowest host s':>14} {'ctl CPU-s/host':>14} "
          f"{'hosts CPU-s':>11} {'efficiency':>10}")
    for batch, version, elapsed, slowest, controller, hosts, eff in rows:
        print(f"{batch:>5} {version:>12} {elapsed:>7.1f} {slowest:>14.1f} {controller / n:>14.1f} "
              f"{hosts:>11.1f} {eff:>10.2f}")
    print(f"efficiency = max(ceil(N/b) * t_host, (controller + hosts CPU-s) / {os.cpu_count()} cores) / wall; "
          "goal >= 0.8 for every batch size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
