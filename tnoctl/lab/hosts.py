"""Start and stop one lab host: netns + overlay + systemd-nspawn, PID-tracked.

A host's directory `lab_dir/hosts/<name>/` holds its disk (`upper/`, `work/`), the overlay
mount point (`merged/`, mounted only inside the host's private mount namespace), the boot spec,
the console log and the process records: `nspawn.json` (the systemd-nspawn process, PID + start
time) and `leader.json` (the host's PID 1, so a host whose nspawn was killed can still be ended).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tnoctl import paths
from tnoctl.errors import OperationFailed
from tnoctl.lab import acme, net, procs
from tnoctl.lab.base import OPERATOR
from tnoctl.lab.dns import render_resolv_conf
from tnoctl.lab.topology import LabHost

NSPAWN_STOP_TIMEOUT = 30.0
BOOT_TIMEOUT = 60.0
PREPARE_TIMEOUT = 300.0
"""Seconds the boot wrapper may spend preparing a host's disk (host keys, trust store) before it execs
nspawn. Not part of BOOT_TIMEOUT: five hosts refreshing their trust store at once (pebble's root is new
at every start) on two cores took long enough to push a healthy boot past its deadline."""


@dataclass(frozen=True)
class HostDir:
    """Paths of one host's directory."""

    root: Path

    @property
    def upper(self) -> Path:
        """The host's disk: the overlay's upper dir."""
        return self.root / "upper"

    @property
    def work(self) -> Path:
        """overlayfs work dir (same filesystem as upper)."""
        return self.root / "work"

    @property
    def merged(self) -> Path:
        """Mount point of the overlay (inside the host's own mount namespace only)."""
        return self.root / "merged"

    @property
    def nspawn_record(self) -> Path:
        """PID record of the host's systemd-nspawn."""
        return self.root / "nspawn.json"

    @property
    def leader_record(self) -> Path:
        """PID record of the host's PID 1 (systemd), as seen from the machine."""
        return self.root / "leader.json"

    @property
    def base_id(self) -> Path:
        """Which base image the upper dir was made over (a different base means a fresh disk)."""
        return self.root / "base-id"

    @property
    def lock_note(self) -> Path:
        """Name of nspawn's lock file for this host's root (noted at boot; removed at stop)."""
        return self.root / "nspawn-lock"

    @property
    def console(self) -> Path:
        """Console output of the boot helper, nspawn and the host's systemd."""
        return self.root / "console.log"


def host_dir(lab_dir: Path, name: str) -> HostDir:
    """The HostDir of `name` under the lab dir."""
    return HostDir(lab_dir / "hosts" / name)


def is_running(hd: HostDir) -> bool:
    """True when the recorded nspawn process of this host is still the one we started."""
    record = procs.ProcRecord.load(hd.nspawn_record)
    return record is not None and procs.matches(record)


def _boot_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(paths.PROJECT_ROOT)
    env["LANG"] = "C.UTF-8"
    return env


def start(
    lab_dir: Path, host: LabHost, lower: Path, base_name: str, hosts_text: str, pubkey: str, ca_cert: Path | None,
    acme_root: Path | None = None,
) -> procs.ProcRecord:
    """Create the host's netns and boot it detached; returns the nspawn record (not yet waited for)."""
    hd = host_dir(lab_dir, host.name)
    if hd.base_id.is_file() and hd.base_id.read_text().strip() != base_name:
        wipe_disk(hd)  # the base changed under this disk: start as a fresh machine
    for sub in (hd.upper, hd.work, hd.merged):
        sub.mkdir(parents=True, exist_ok=True)
    hd.base_id.write_text(base_name + "\n")
    net.create_host_net(host.name, host.address)
    spec = {
        "name": host.name,
        "lower": str(lower),
        "upper": str(hd.upper),
        "work": str(hd.work),
        "merged": str(hd.merged),
        "hosts_text": hosts_text,
        "authorized_keys": pubkey,
        "operator": OPERATOR,
        "ca_cert": str(ca_cert) if ca_cert else "",
        "acme_root": str(acme_root) if acme_root else "",
        "acme_accounts": acme.certbot_accounts_dir(),
        "resolv_text": render_resolv_conf(),
        "lock_note": str(hd.lock_note),
    }
    spec_path = hd.root / "boot.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    argv = ["unshare", "--mount", "--propagation", "private", "--"]
    argv += [sys.executable, "-m", "tnoctl.lab.boot", str(spec_path)]
    pid = procs.spawn_detached(argv, hd.console, env=_boot_env())
    record = procs.record_for(pid, marker=host.name, program="systemd-nspawn")
    record.save(hd.nspawn_record)
    hd.leader_record.unlink(missing_ok=True)
    return record


def _find_leader(nspawn_pid: int) -> int | None:
    """The host's PID 1: the child of nspawn that is PID 1 of its own PID namespace."""
    for child in procs.children(nspawn_pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                return child
    return None


def wait_booted(lab_dir: Path, host: LabHost, record: procs.ProcRecord, timeout: float = BOOT_TIMEOUT) -> None:
    """Wait until the host's sshd accepts TCP, its host keys exist and it lets the operator log in.

    Records its PID 1. The operator is an unprivileged account: pam_nologin refuses it while the
    host's ``/run/nologin`` exists (created at sysinit, before sshd starts; removed by
    systemd-user-sessions), so that file, read through ``/proc/<PID 1>/root``, is waited for too.
    """
    hd = host_dir(lab_dir, host.name)
    _wait_prepared(hd, host, record)
    deadline = time.monotonic() + timeout  # the boot itself: from the moment nspawn runs
    while True:
        if not procs.alive(record):
            tail = hd.console.read_text(errors="replace").splitlines()[-8:] if hd.console.exists() else []
            raise OperationFailed(f"{host.name}: the host exited during boot (see {hd.console})", details=tail)
        if (hd.upper / "etc/ssh/ssh_host_ed25519_key.pub").exists() and _port_open(host.address, 22):
            break
        if time.monotonic() > deadline:
            raise OperationFailed(f"{host.name}: sshd not reachable after {timeout:.0f}s (see {hd.console})")
        time.sleep(0.1)
    leader = _find_leader(record.pid)
    if leader is None:
        raise OperationFailed(f"{host.name}: cannot find the host's PID 1 under nspawn {record.pid}")
    stat = procs.read_stat(leader)
    argv = procs.read_cmdline(leader)
    if stat is not None and argv:
        procs.ProcRecord(leader, stat[2], "", Path(argv[0]).name).save(hd.leader_record)
    nologin = Path(f"/proc/{leader}/root/run/nologin")
    while nologin.exists():
        if time.monotonic() > deadline:
            raise OperationFailed(f"{host.name}: unprivileged logins still refused after {timeout:.0f}s "
                                  f"(/run/nologin; see {hd.console})")
        time.sleep(0.1)


def _wait_prepared(hd: HostDir, host: LabHost, record: procs.ProcRecord) -> None:
    """Wait until the boot wrapper (record.pid) has prepared the disk and become systemd-nspawn."""
    deadline = time.monotonic() + PREPARE_TIMEOUT
    comm = Path(f"/proc/{record.pid}/comm")
    while True:
        if not procs.alive(record):
            tail = hd.console.read_text(errors="replace").splitlines()[-8:] if hd.console.exists() else []
            raise OperationFailed(f"{host.name}: the host exited during boot (see {hd.console})", details=tail)
        try:
            if comm.read_text().strip() == "systemd-nspawn":
                return
        except OSError:
            pass  # gone meanwhile: procs.alive says so on the next look
        if time.monotonic() > deadline:
            raise OperationFailed(f"{host.name}: disk preparation not finished after {PREPARE_TIMEOUT:.0f}s "
                                  f"(see {hd.console})")
        time.sleep(0.1)


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(lab_dir: Path, name: str) -> str:
    """Stop the host (SIGTERM to nspawn = clean poweroff; SIGKILL after a timeout), drop its netns.

    Returns what happened: stopped | killed | gone. Only recorded PIDs whose cmdline and start
    time still match are signalled. The disk (upper dir) is kept.
    """
    hd = host_dir(lab_dir, name)
    outcome = "gone"
    record = procs.ProcRecord.load(hd.nspawn_record)
    if record is not None:
        outcome = procs.stop(record, timeout=NSPAWN_STOP_TIMEOUT)
    leader = procs.ProcRecord.load(hd.leader_record)
    if leader is not None and procs.matches(leader):
        # nspawn was killed but the host's systemd lives on: SIGKILL of a PID-namespace init ends the namespace
        procs.signal_if_ours(leader, signal.SIGKILL)
        procs.wait_gone(leader, 10.0)
        outcome = "killed"
    hd.nspawn_record.unlink(missing_ok=True)
    hd.leader_record.unlink(missing_ok=True)
    net.remove_host_net(name)
    lock_name = hd.lock_note.read_text().strip() if hd.lock_note.is_file() else None
    remove_nspawn_leftovers(name, lock_name)
    hd.lock_note.unlink(missing_ok=True)
    return outcome


def remove_nspawn_leftovers(
    name: str, lock_name: str | None, run_dir: Path = Path("/run/systemd/nspawn")
) -> None:
    """Remove nspawn's per-machine propagate dir and lock file and, when empty, its run dirs and its cgroup."""
    from tnoctl.lab.boot import release_cgroup

    with contextlib.suppress(OSError):
        release_cgroup(name, Path("/proc/self/cgroup").read_text())
    shutil.rmtree(run_dir / "propagate" / name, ignore_errors=True)
    if lock_name and lock_name.startswith("inode-") and "/" not in lock_name:
        (run_dir / "locks" / lock_name).unlink(missing_ok=True)
    for sub in (run_dir / "propagate", run_dir / "locks", run_dir):
        with contextlib.suppress(OSError):
            sub.rmdir()


def wipe_disk(hd: HostDir) -> None:
    """Discard the host's disk: a fresh machine (new host keys, new machine-id) at next start."""
    shutil.rmtree(hd.upper, ignore_errors=True)
    shutil.rmtree(hd.work, ignore_errors=True)


def remove(lab_dir: Path, name: str) -> None:
    """Remove everything of a stopped host, its disk included."""
    shutil.rmtree(host_dir(lab_dir, name).root, ignore_errors=True)
