"""Lab acceptance 5: a lab whose processes were all killed (a stopped CI session) comes back with
`tnoctl lab up`, and `tnoctl lab down` then leaves nothing behind.

Destructive: this file is named to run last among the e2e tests; it leaves the lab down (the
session fixture's `down()` is idempotent).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.lab import net, procs
from tnoctl.lab.lab import Lab

pytestmark = [pytest.mark.root, pytest.mark.lab]


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), AppContext(inventory=paths.LAB_INVENTORY, stdout=out, stderr=err))
    return rc, err.getvalue()


def _records(lab: Lab) -> list[procs.ProcRecord]:
    """Every recorded lab process: each host's nspawn and PID 1, apt-cacher-ng, the repo server."""
    files = [lab.acng_dir / "acng.json", lab.apt_dir / "server.json"]
    for host in lab.topology.hosts:
        files += [lab.lab_dir / "hosts" / host.name / "nspawn.json", lab.lab_dir / "hosts" / host.name / "leader.json"]
    records = [procs.ProcRecord.load(f) for f in files]
    assert all(r is not None for r in records), "every lab process must be recorded"
    return [r for r in records if r is not None]


def _descendants(pid: int) -> set[tuple[int, int]]:
    """(pid, starttime) of pid and every process below it."""
    found: set[tuple[int, int]] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        stat = procs.read_stat(current)
        if stat is not None:
            found.add((current, stat[2]))
            todo.extend(procs.children(current))
    return found


def _lab_netns(lab: Lab) -> set[str]:
    names = {h.name for h in lab.topology.hosts}
    return {p.name for p in net.NETNS_DIR.glob("*")} & names if net.NETNS_DIR.is_dir() else set()


def _lab_mounts(lab: Lab) -> list[str]:
    hosts = {h.name for h in lab.topology.hosts}
    bad = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mountpoint, source = fields[4], fields[-2]
        if (
            mountpoint.startswith(str(lab.lab_dir))
            or mountpoint.startswith(str(lab.cache_dir))
            or mountpoint in {f"/run/netns/{h}" for h in hosts}
            or source.startswith("tno-lab-")
        ):
            bad.append(line)
    return bad


def _lab_processes(lab: Lab) -> list[str]:
    """Processes whose command line names the lab (nspawn -M host, lab dirs, lab servers)."""
    hosts = {h.name for h in lab.topology.hosts}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = procs.read_cmdline(int(entry.name))
        if not argv:
            continue
        joined = " ".join(argv)
        nspawn = Path(argv[0]).name == "systemd-nspawn" and any(argv[i + 1] in hosts for i, a in enumerate(
            argv[:-1]) if a == "-M")
        servers = "BindAddress=198.18.0.1" in argv or ("http.server" in argv and "198.18.0.1" in argv)
        if nspawn or servers or str(lab.lab_dir) in joined:
            stat = procs.read_stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                found.append(f"{entry.name}: {joined}")
    return found


def test_killed_lab_recovers_with_up_and_down_leaves_nothing(lab: Lab) -> None:
    assert lab.is_up()
    before = set()
    for record in _records(lab):
        before |= _descendants(record.pid)
    for record in _records(lab):  # a stopped session: every lab process killed by PID, no cleanup
        assert procs.signal_if_ours(record, signal.SIGKILL) or not procs.matches(record)
    for record in _records(lab):
        assert procs.wait_gone(record, 10.0)
    states = {s.state for s in lab.status()}
    assert states == {"stale"}, states

    rc, err = _cli("lab", "up")
    assert rc == 0, err
    assert {s.state for s in lab.status()} == {"running"}
    for host in ("mail1", "backup1"):
        proc = subprocess.run(["ssh", "-F", str(lab.ssh_config_path), host, "systemctl is-system-running"],
                              capture_output=True, text=True, check=False)
        assert proc.stdout.strip() == "running", proc.stderr
    for record in _records(lab):
        before |= _descendants(record.pid)

    rc, err = _cli("lab", "down")
    assert rc == 0, err
    assert _lab_netns(lab) == set()
    assert not net.link_exists(net.BRIDGE)
    assert not [h.name for h in lab.topology.hosts if net.link_exists(net.veth_name(h.name))]
    assert _lab_mounts(lab) == []
    assert _lab_processes(lab) == []
    survivors = [pid for pid, start in before if (s := procs.read_stat(pid)) and s[2] == start and s[0] != "Z"]
    assert survivors == [], f"lab processes left after down: {survivors}"
    assert not (lab.lab_dir / "hosts").exists()
    assert {s.state for s in lab.status()} == {"stopped"}
    assert os.path.exists(lab.lab_dir / "id_ed25519")  # the lab key survives; a new lab reuses it
