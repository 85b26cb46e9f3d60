"""Pre-boot helper of one lab host; runs in the host's private mount namespace, then becomes nspawn.

Started as `unshare --mount --propagation private -- python -m tnoctl.lab.boot SPEC.json`
(detached, PID recorded). Because the mount namespace is private, the overlay and every other
mount made here vanish by themselves when the host's last process exits: nothing to unmount,
nothing leaks into the machine's mount table. Steps:

1. lazily unmount the *other* hosts' /run/netns/* copies in this namespace (otherwise this host
   would keep a deleted neighbour's netns — and its address — alive after a restart);
2. mount the overlay (lower = cached base, upper/work = the host's own disk);
3. write the host's identity: hostname, mailname, /etc/hosts, /etc/resolv.conf (the lab DNS),
   machine-id, the operator account's authorized_keys (root has none and cannot log in), ssh host
   keys on first boot, the lab CA and pebble's current root in the trust store (when changed; a new
   pebble root also drops the host's certbot account at the previous pebble, which no longer exists);
4. exec systemd-nspawn -b (real systemd as PID 1) in the host's network namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

CA_TARGET = "usr/local/share/ca-certificates/tno-lab-ca.crt"
ACME_ROOT_TARGET = "usr/local/share/ca-certificates/tno-lab-acme-root.crt"
"""pebble's root (new at every pebble start): trusted next to the lab CA, absent when pebble is not up."""
HOST_KEY_TYPES = ("ed25519", "ecdsa")
"""Host keys made at first boot. No RSA: generating five 3072-bit keys dominated `lab up` on 2 cores."""
HOST_KEYS_CONF = "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in HOST_KEY_TYPES)


def nspawn_argv(name: str, merged: str) -> list[str]:
    """The systemd-nspawn command line of a lab host (pure; tested)."""
    return [
        "systemd-nspawn",
        "-q",
        "-D",
        merged,
        "-M",
        name,
        f"--network-namespace-path=/run/netns/{name}",
        "-b",
        "--register=no",
        "--keep-unit",
        "--console=passive",
        "--resolv-conf=off",
        "--timezone=off",  # like a real server, the host owns /etc/localtime (tno_common sets it)
        "--link-journal=no",
    ]


CGROUP_PREFIX = "tno-lab-"
"""Each lab host's nspawn runs in a cgroup of its own, ``<caller's cgroup>/tno-lab-<host>`` (see own_cgroup)."""


def cgroup_hierarchies(proc_cgroup: str, root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """The cgroup directories of the caller that nspawn's payload goes under (pure but for `is_file`).

    cgroup v2 alone: ``root/<path of 0::>``; hybrid (v1 ``name=systemd`` plus ``unified``): both.
    """
    paths = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            paths["unified"] = parts[2]
        elif len(parts) == 3 and parts[1] == "name=systemd":
            paths["systemd"] = parts[2]
    if (root / "cgroup.procs").is_file():  # pure v2
        return [root / paths["unified"].lstrip("/")] if "unified" in paths else []
    return [root / sub / paths[sub].lstrip("/") for sub in ("systemd", "unified")
            if sub in paths and (root / sub / "cgroup.procs").is_file()]


def own_cgroup(name: str, pid: int) -> list[Path]:
    """Move ``pid`` (the boot wrapper, soon nspawn) into ``tno-lab-<name>`` in each hierarchy; the dirs made.

    Why: with --keep-unit and --register=no, nspawn puts the host's systemd in ``<its cgroup>/payload``.
    Five hosts started by one process shared that one ``/payload``: five systemd instances creating and
    removing each other's unit cgroups, so a unit could fail with 219/CGROUP at boot (seen on
    systemd-user-sessions, which then never removed /run/nologin: the operator could not log in).
    """
    made = []
    for parent in cgroup_hierarchies(Path("/proc/self/cgroup").read_text()):
        mine = parent / f"{CGROUP_PREFIX}{name}"
        mine.mkdir(exist_ok=True)
        (mine / "cgroup.procs").write_text(f"{pid}\n")
        made.append(mine)
    return made


def release_cgroup(name: str, proc_cgroup: str, wait: float = 5.0) -> None:
    """Remove the host's cgroup dirs (bottom-up) once empty; busy ones stay after ``wait`` seconds.

    Just after nspawn is reaped its supervisor cgroup can still count the exiting task for a moment.
    """
    import time

    deadline = time.monotonic() + wait
    for parent in cgroup_hierarchies(proc_cgroup):
        mine = parent / f"{CGROUP_PREFIX}{name}"
        while mine.is_dir():
            for dirpath, _dirs, _files in sorted(os.walk(mine), key=lambda entry: -len(entry[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
            if not mine.is_dir() or time.monotonic() > deadline:
                break
            time.sleep(0.1)


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _detach_other_netns(name: str) -> None:
    """Unmount every /run/netns/<other> in this (private) mount namespace."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4]
        if mountpoint.startswith("/run/netns/") and mountpoint != f"/run/netns/{name}":
            subprocess.run(["umount", "-l", mountpoint], check=False)


def account(merged: Path, user: str) -> tuple[int, int, Path]:
    """(uid, gid, home) of ``user`` from the host's own /etc/passwd (the base image made the account)."""
    for line in (merged / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == user:
            return int(fields[2]), int(fields[3]), Path(fields[5])
    raise SystemExit(f"lab host has no account {user!r}: the base image is older than this tnoctl")


def write_authorized_keys(merged: Path, user: str, keys: str) -> None:
    """The lab key in ``~user/.ssh/authorized_keys`` (owned by the user, as sshd's StrictModes wants)."""
    uid, gid, home = account(merged, user)
    ssh_dir = merged / home.relative_to("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ssh_dir.chmod(0o700)
    _write(ssh_dir / "authorized_keys", keys, 0o600)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, uid, gid)


def prepare(spec: dict[str, str]) -> None:
    """Mount the overlay and write the host's identity into it (steps 1-3)."""
    name = spec["name"]
    merged = Path(spec["merged"])
    _detach_other_netns(name)
    options = f"lowerdir={spec['lower']},upperdir={spec['upper']},workdir={spec['work']}"
    _sh("mount", "-t", "overlay", f"tno-lab-{name}", "-o", options, str(merged))
    if spec.get("lock_note"):
        # nspawn's image lock is /run/systemd/nspawn/locks/inode-<dev>:<ino> of this mount: note it for cleanup
        st = merged.stat()
        Path(spec["lock_note"]).write_text(f"inode-{st.st_dev}:{st.st_ino}\n")
    _write(merged / "etc/hostname", f"{name}\n")
    _write(merged / "etc/mailname", f"{name}.lab.test\n")
    _write(merged / "etc/hosts", spec["hosts_text"])
    if spec.get("resolv_text"):
        _write(merged / "etc/resolv.conf", spec["resolv_text"])
    machine_id = merged / "etc/machine-id"
    if not machine_id.exists() or not machine_id.read_text().strip():
        _write(machine_id, uuid.uuid4().hex + "\n", 0o444)
    write_authorized_keys(merged, spec["operator"], spec["authorized_keys"])
    _write(merged / "etc/ssh/sshd_config.d/tno-lab-hostkeys.conf", HOST_KEYS_CONF)
    need_keys = not (merged / "etc/ssh/ssh_host_ed25519_key").exists()
    ca_text = Path(spec["ca_cert"]).read_text() if spec.get("ca_cert") else None
    ca_path = merged / CA_TARGET
    need_ca = ca_text is not None and (not ca_path.exists() or ca_path.read_text() != ca_text)
    acme_text = Path(spec["acme_root"]).read_text() if spec.get("acme_root") else ""
    acme_path = merged / ACME_ROOT_TARGET
    current_acme = acme_path.read_text() if acme_path.exists() else ""
    need_ca = need_ca or acme_text != current_acme
    if current_acme and acme_text and acme_text != current_acme and spec.get("acme_accounts"):
        # pebble restarted (a new root) while this disk was kept: the host's account there is gone, and
        # certbot would fail every issuance with it; certbot registers anew at the next one, and role
        # tno_acme issues again the lineages the host's trust store no longer verifies
        shutil.rmtree(merged / spec["acme_accounts"], ignore_errors=True)
    if need_keys or need_ca:
        _sh("mount", "--rbind", "/dev", str(merged / "dev"))
        _sh("mount", "-t", "proc", "proc", str(merged / "proc"))
        if need_keys:
            for key_type in HOST_KEY_TYPES:
                key = f"/etc/ssh/ssh_host_{key_type}_key"
                _sh("chroot", str(merged), "ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", name, "-f", key)
        if need_ca:
            if ca_text is not None:
                _write(ca_path, ca_text)
            if acme_text:
                _write(acme_path, acme_text)
            else:
                acme_path.unlink(missing_ok=True)
            _sh("chroot", str(merged), "update-ca-certificates", "--fresh")
        _sh("umount", "-R", "-l", str(merged / "dev"))
        _sh("umount", "-l", str(merged / "proc"))


def main(argv: list[str]) -> None:
    """Entry point: prepare, then exec nspawn (this PID becomes the host's nspawn)."""
    spec = json.loads(Path(argv[1]).read_text())
    prepare(spec)
    try:
        own_cgroup(spec["name"], os.getpid())
    except OSError as exc:  # no writable cgroup tree: boot as before, in the caller's cgroup
        print(f"tnoctl lab: {spec['name']}: no cgroup of its own ({exc}); booting in the caller's", flush=True)
    nspawn = shutil.which("systemd-nspawn") or "/usr/bin/systemd-nspawn"
    args = nspawn_argv(spec["name"], spec["merged"])
    sys.stdout.flush()
    os.execv(nspawn, args)


if __name__ == "__main__":
    main(sys.argv)
