"""The lab's base image: one debootstrap'ed, configured Debian 12 rootfs, cached as a zstd tarball.

Every lab host is an overlayfs over this directory (never modified once built). The tarball
and directory names carry a hash of the *recipe* (suite, mirror, package list, every file
written by :func:`configure` and :data:`CONFIG_VERSION`), so changing the recipe builds a new
base and an unchanged recipe reuses the cache: cold build = debootstrap (~1 min), cached =
untar (seconds), warm = nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tnoctl.lab.cmd import log, run, step

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
GATEWAY = "198.18.0.1"
APT_PROXY = f"http://{GATEWAY}:3142"
INCLUDE: tuple[str, ...] = (
    "openssh-server",
    "python3",
    "python3-apt",
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "ca-certificates",
    "iproute2",
    "procps",
    "sudo",
    "less",
    # The mail stack's two largest installs (~120 s per mail host otherwise): preinstalled here, disabled
    # below until the tno_mail role enables them; the role still installs them on a production host.
    "rspamd",
    "redis-server",
    # Every host's next largest installs (~60 s of a fresh deploy): the ACME client (tno_tls_mode acme),
    # node_exporter, borg. Their units behave as after the roles' own apt (enabled by the package, then
    # configured by the roles), so nothing is disabled; the roles still install them in production.
    "certbot",
    "python3-certbot-dns-rfc2136",
    "python3-cffi-backend",  # provides python3-cryptography's virtual cffi API: debootstrap resolves no virtuals
    "prometheus-node-exporter",
    "borgbackup",
    "borgmatic",
)
DISABLED_UNITS: tuple[str, ...] = ("rspamd.service", "redis-server.service")
"""Preinstalled services no lab host runs until a role enables them (office and backup hosts never do)."""
MASKED_UNITS: tuple[str, ...] = (
    # Remounting the root is meaningless on an overlay container root; on cgroup-v1 machines its
    # early start also races nspawn's cgroup setup and leaves the host "degraded".
    "systemd-remount-fs.service",
)
CONFIG_VERSION = 5
"""Bump when :func:`configure` changes in a way the file table below does not show."""

OPERATOR = "tnoops"
"""The unprivileged operator account every lab host has (passwordless sudo), as in production.

The lab inventory logs in as this user (``ansible_user``) with ``ansible_become``; root cannot
log in over SSH (``PermitRootLogin no``). Its name is part of the recipe hash."""
SUDOERS_REL = f"etc/sudoers.d/{OPERATOR}"

COMPLETE_MARKER = ".tno-base-complete"

FILES: dict[str, str] = {
    "etc/apt/sources.list": (
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n"
    ),
    # Lab hosts have no route off the lab: apt goes through apt-cacher-ng on the bridge, except
    # the local signed apt repo on the bridge address itself, which is reached directly.
    "etc/apt/apt.conf.d/01tno-lab-proxy": (
        f'Acquire::http::Proxy "{APT_PROXY}";\nAcquire::http::Proxy::{GATEWAY} "DIRECT";\n'
    ),
    "etc/apt/apt.conf.d/02tno-lab-no-cache": 'APT::Keep-Downloaded-Packages "false";\n',
    # No HTTP pipelining through the proxy (apt + apt-cacher-ng can stall on a closed pipelined
    # connection), a bounded wait and retries instead of a hang.
    "etc/apt/apt.conf.d/03tno-lab-http": (
        'Acquire::http::Pipeline-Depth "0";\nAcquire::http::Timeout "30";\nAcquire::Retries "3";\n'
    ),
    # No DNS in the lab: names live in /etc/hosts (debootstrap copied the build machine's resolver).
    "etc/resolv.conf": "# tnoctl lab host: no DNS server; lab names are in /etc/hosts\n",
    "etc/default/locale": "LANG=C.UTF-8\n",
    "etc/ssh/sshd_config.d/tno-lab.conf": (
        "PermitRootLogin no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
    ),
    # Passwordless sudo for the operator; no requiretty (Debian's default), so Ansible's pipelining
    # with become works. Mode 0440 (set in configure), like visudo writes it.
    SUDOERS_REL: f"{OPERATOR} ALL=(ALL:ALL) NOPASSWD: ALL\n",
}


@dataclass(frozen=True)
class BaseImage:
    """Where the base of one recipe lives in the cache dir."""

    cache_dir: Path
    recipe_hash: str

    @property
    def name(self) -> str:
        """`base-bookworm-<hash12>`: the stem of both the tarball and the directory."""
        return f"base-{SUITE}-{self.recipe_hash[:12]}"

    @property
    def tarball(self) -> Path:
        """The cached zstd tarball of the configured rootfs."""
        return self.cache_dir / f"{self.name}.tar.zst"

    @property
    def rootfs(self) -> Path:
        """The extracted rootfs every host's overlay uses as its lower dir."""
        return self.cache_dir / self.name

    @property
    def is_ready(self) -> bool:
        """True when the rootfs was fully built or extracted (marker written last)."""
        return (self.rootfs / COMPLETE_MARKER).is_file()


def recipe_hash() -> str:
    """Hash of everything that determines the base content (pure; tested)."""
    recipe = {
        "suite": SUITE,
        "mirror": MIRROR,
        "security": SECURITY_MIRROR,
        "include": sorted(INCLUDE),
        "files": FILES,
        "config_version": CONFIG_VERSION,
        "masked": sorted(MASKED_UNITS),
        "disabled": sorted(DISABLED_UNITS),
        "operator": OPERATOR,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def current(cache_dir: Path) -> BaseImage:
    """The base image descriptor for the current recipe."""
    return BaseImage(cache_dir=cache_dir, recipe_hash=recipe_hash())


def configure(rootfs: Path) -> None:
    """Turn a fresh debootstrap tree into the lab base (files, operator account, no host keys, empty machine-id)."""
    for rel, content in FILES.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_text(content)
    (rootfs / SUDOERS_REL).chmod(0o440)
    run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", "--comment",
         "tnoctl operator", OPERATOR])  # no password ("!"): key login only
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # every host makes its own host keys on first boot
    (rootfs / "etc/machine-id").write_text("")  # every host gets its own id
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    (rootfs / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Package scripts enabled these at install time (policy-rc.d kept them stopped): a host starts them only
    # when its role says so (`systemctl disable` works offline in a chroot).
    run(["chroot", str(rootfs), "systemctl", "disable", "--quiet", *DISABLED_UNITS])
    run(["chroot", str(rootfs), "apt-get", "clean"])
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    # No stale "apt-get update succeeded" stamps: with empty lists they would make apt(cache_valid_time)
    # believe the cache is fresh and find no package at all on a new host.
    shutil.rmtree(rootfs / "var/lib/apt/periodic", ignore_errors=True)
    for cache in (rootfs / "var/cache/apt").glob("*.bin"):
        cache.unlink()
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    # apt(cache_valid_time) also falls back to the lists dir's mtime: make the empty lists look old.
    os.utime(rootfs / "var/lib/apt/lists", (0, 0))


def _debootstrap(target: Path) -> None:
    """debootstrap minbase + INCLUDE into `target` (uses the machine's resolver: the mirror exception)."""
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, str(target), MIRROR],
        quiet=True,
    )


def _write_tarball(rootfs: Path, tarball: Path) -> None:
    """tar | zstd the rootfs atomically (tmp file, then rename)."""
    tmp = tarball.with_suffix(".tmp")
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-I", "zstd -T0 -3", "-cpf", str(tmp), "."])
    tmp.rename(tarball)


def _extract(tarball: Path, target: Path) -> None:
    """Unpack a cached tarball into `target`."""
    target.mkdir(parents=True)
    run(["tar", "-C", str(target), "--numeric-owner", "--zstd", "-xpf", str(tarball)])


def prune(cache_dir: Path, keep: BaseImage) -> None:
    """Remove base dirs/tarballs of other recipes (and half-built leftovers)."""
    for entry in cache_dir.glob(f"base-{SUITE}-*"):
        if entry.name in (keep.name, keep.tarball.name):
            continue
        log(f"removing old base {entry.name}")
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def ensure_base(cache_dir: Path) -> BaseImage:
    """Return the ready base for the current recipe: reuse, untar the cache, or debootstrap."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    image = current(cache_dir)
    if image.is_ready:
        return image
    staging = cache_dir / f"{image.name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    if image.tarball.is_file():
        with step(f"extracting cached base {image.tarball.name}"):
            _extract(image.tarball, staging)
    else:
        with step(f"building base {image.name} (debootstrap {SUITE} minbase; about a minute)"):
            _debootstrap(staging)
            configure(staging)
            (staging / COMPLETE_MARKER).write_text(image.recipe_hash + "\n")
        with step(f"writing {image.tarball.name}"):
            _write_tarball(staging, image.tarball)
    shutil.rmtree(image.rootfs, ignore_errors=True)
    staging.rename(image.rootfs)
    prune(cache_dir, image)
    return image
