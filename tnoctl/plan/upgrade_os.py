"""Pure planner for `tnoctl upgrade os`: which Debian packages move on which host, in which waves.

The pre-flight (tnoctl/actions/upgrade_os.py) asks every host what ``apt-get -s upgrade`` would do
and hands the text here. :func:`parse_simulation` reads its ``Inst`` lines (package, installed
version, candidate version, the archives offering the candidate), :func:`select` keeps what the
operator asked for:

- default: every upgradable package;
- ``--security-only``: the packages whose candidate comes from a ``*-security`` archive (the origin
  test of unattended-upgrades' ``Origins-Pattern`` ``codename=${distro_codename}-security``: apt
  names the archive in the simulation, e.g. ``Debian-Security:12/stable-security``);
- ``--packages P,...``: only the named packages.

The selected ``package -> candidate version`` map of each host is the plan's target for that host
(stored in the journal: ``--resume`` installs exactly the same versions, even if the mirror moved).
Hosts with nothing to do are left out of the waves and reported as up to date. The rollback target
is computed from the safety snapshot (``dpkg-query -W``, :func:`parse_installed`) and the versions
found after the upgrade (:func:`downgrades`). No I/O here: tests assert plans exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tnoctl.errors import InvalidInput
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.upgrade import (
    DEFAULT_WAVES,
    UPGRADE_PLAYBOOK,
    UpgradePlan,
    Wave,
    host_tenants,
    parse_waves,
    split_waves,
    window_step,
)

COMPONENT = "os"
PACKAGES_VAR = "tno_common_os_packages"
"""Role variable (tno_common, tasks/upgrade.yml): the ``pkg=version`` list to install."""
_INST_RE = re.compile(r"^Inst (?P<pkg>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<new>\S+) (?P<origins>.*?)(?: \[[^\]]+\])?\)")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,99}$")


@dataclass(frozen=True)
class Pending:
    """One package ``apt-get -s upgrade`` would upgrade on a host."""

    package: str
    installed: str
    candidate: str
    origins: tuple[str, ...]  # "Debian-Security:12/stable-security", "Debian:12.8/stable", ...

    @property
    def security(self) -> bool:
        """True when the candidate comes from a security archive (``.../<suite>-security``)."""
        return any(o.rsplit("/", 1)[-1].endswith("-security") for o in self.origins)


def parse_simulation(text: str) -> list[Pending]:
    """``apt-get -s upgrade`` output -> the packages it would upgrade (new installs have no ``[old]``: skipped)."""
    found = []
    for line in text.splitlines():
        match = _INST_RE.match(line.strip())
        if match and match["old"]:
            origins = tuple(o.strip() for o in match["origins"].split(",") if o.strip())
            found.append(Pending(match["pkg"].split(":", 1)[0], match["old"], match["new"], origins))
    return found


def parse_packages(text: str) -> tuple[str, ...]:
    """``--packages a,b`` -> ("a", "b"), or InvalidInput naming --packages."""
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise InvalidInput("--packages: empty; give Debian package names, e.g. openssl,libssl3")
    for name in names:
        if not _PACKAGE_RE.match(name):
            raise InvalidInput(f"--packages: {name!r} is not a Debian package name")
    return names


def select(pending: Iterable[Pending], *, packages: tuple[str, ...] = (),
           security_only: bool = False) -> dict[str, str]:
    """The ``package -> candidate`` map to install on a host for the operator's selection."""
    chosen = {}
    for item in pending:
        if packages and item.package not in packages:
            continue
        if security_only and not item.security:
            continue
        chosen[item.package] = item.candidate
    return dict(sorted(chosen.items()))


def selection_label(packages: tuple[str, ...], security_only: bool) -> str:
    """What the rollout installs, in one word or list (the plan's ``to_version``, shown and audited)."""
    label = "security" if security_only else "updates"
    return f"{label}:{','.join(packages)}" if packages else label


def parse_installed(text: str) -> dict[str, str]:
    """``dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'`` -> installed package -> version."""
    found = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].strip() == "ii" and parts[1] and parts[2]:
            found[parts[1].split(":", 1)[0]] = parts[2].strip()
    return found


def downgrades(before: Mapping[str, str], now: Mapping[str, str]) -> dict[str, str]:
    """Packages whose version changed since the snapshot -> the recorded version (what the rollback installs).

    Packages the upgrade newly installed (absent from the snapshot) are left in place: removing them
    could take other packages along; docs/upgrades.md says so.
    """
    return {p: v for p, v in sorted(before.items()) if p in now and now[p] != v}


def plan_os(inventory: Any, targets: Mapping[str, Mapping[str, str]], *, label: str, now: datetime,
            waves: str = DEFAULT_WAVES, batch: int = 1, max_failures: int = 0,
            ignore_windows: bool = False) -> UpgradePlan:
    """Waves over the hosts that have something to install (``targets``: host -> package -> version).

    A host's tenants are every tenant it serves (mail or office); the canary wave takes the hosts of
    pilot tenants. ``options["targets"]`` keeps the per-host versions for the executor and ``--resume``.
    """
    if batch < 1:
        raise InvalidInput("--batch: must be at least 1")
    if max_failures < 0:
        raise InvalidInput("--max-failures: must be 0 or more")
    specs = parse_waves(waves)
    selected = sorted(h for h, pkgs in targets.items() if pkgs)
    by_host = {h: host_tenants(inventory, h) for h in selected}
    pilots = {h for h, ts in by_host.items() if any(getattr(t, "pilot", False) for t in ts)}
    planned = tuple(Wave(index, name, tuple(window_step(h, by_host[h], now) for h in members))
                    for index, (name, members) in enumerate(split_waves(selected, specs, pilots)))
    options = {"targets": {h: dict(sorted(targets[h].items())) for h in selected}}
    return UpgradePlan(COMPONENT, label, planned, batch, max_failures, ignore_windows, options)


def select_hosts(inventory: Any, hosts: tuple[str, ...], tenants: tuple[str, ...]) -> list[str]:
    """The hosts an OS rollout may touch: every inventory host, narrowed by ``--hosts`` / ``--tenant``."""
    every = sorted(inventory.hosts)
    for name in hosts:
        if name not in every:
            raise InvalidInput(f"--hosts: {name!r} is not a host of the inventory ({', '.join(every)})")
    selected = [h for h in every if not hosts or h in hosts]
    if tenants:
        wanted = set()
        for slug in tenants:
            tenant = inventory.tenant(slug)  # raises InvalidInput for an unknown tenant
            wanted |= {getattr(tenant.placement, s, None) for s in ("mail", "office") if s in tenant.services}
        selected = [h for h in selected if h in wanted]
    if not selected:
        raise InvalidInput("nothing to upgrade: the selection has no host")
    return selected


def os_call(host: str, packages: Mapping[str, str], operation_id: str, *, rollback: bool = False) -> PlaybookCall:
    """The playbook call that installs ``packages`` (``pkg -> version``) on one host, or downgrades to them."""
    extra: dict[str, Any] = {
        "tno_action": "upgrade",
        "tno_upgrade_component": COMPONENT,
        "tno_upgrade_id": operation_id,
        "tno_upgrade_rollback": rollback,
        PACKAGES_VAR: [f"{p}={v}" for p, v in sorted(packages.items())],
    }
    return PlaybookCall(playbook=UPGRADE_PLAYBOOK, extra_vars=extra, limit=(host,))
