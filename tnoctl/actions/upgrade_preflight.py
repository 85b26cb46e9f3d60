"""Pre-flight of an upgrade, before anything is stopped: is the target version there, who is already unhealthy?

1. **Target version available** (office): on every host of the plan, through the one SSH factory,
   ``apt-get update`` then ``apt-cache madison`` of the whole office package set (coolwsd and its
   lockstep companions, ``tno_office_companion_packages``). A package whose target version is not
   offered on a host fails the rollout *before any host is touched* (exit 1, hosts and packages named).
   The mail component has no package to look for (its release is rendered from the inventory).
2. **Tenants already unhealthy**: the gate's probes run once for every tenant of the plan. Checks
   failing now are *reported and excluded from the gate verdict* (docs/upgrades.md): the upgrade cannot
   be blamed for them, so they neither block the rollout nor trigger a needless rollback; every other
   check of those tenants still gates. The baseline is journaled, so ``--resume`` uses the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tnoctl.errors import OperationFailed

UPDATE = ["apt-get", "update", "-q"]
MADISON = ["apt-cache", "madison"]


def office_packages(inventory: Any) -> list[str]:
    """The office package set: coolwsd, then the platform's lockstep companions."""
    return ["coolwsd", *getattr(inventory.platform, "tno_office_companion_packages", [])]


def parse_madison(text: str) -> dict[str, set[str]]:
    """``apt-cache madison`` output → package → versions offered (``pkg | version | source`` lines)."""
    offered: dict[str, set[str]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[0] and parts[1]:
            offered.setdefault(parts[0], set()).add(parts[1])
    return offered


def missing_packages(offered: dict[str, set[str]], packages: Iterable[str], version: str) -> list[str]:
    """The packages of the set whose ``version`` is not offered (pure)."""
    return [p for p in packages if version not in offered.get(p, set())]


def host_missing(run: Callable[..., Any], host: str, packages: list[str], version: str) -> list[str]:
    """Refresh the host's package index and return what is missing there (``pkg=version``, or the error)."""
    update = run(host, UPDATE, timeout=300)
    if not update.ok:
        return [f"apt-get update failed: {update.stderr.strip()[-160:]}"]
    madison = run(host, [*MADISON, *packages], timeout=60)
    if not madison.ok:
        return [f"apt-cache madison failed: {madison.stderr.strip()[-160:]}"]
    return [f"{p}={version}" for p in missing_packages(parse_madison(madison.stdout), packages, version)]


def check_available(run: Callable[..., Any], inventory: Any, component: str, hosts: list[str], version: str) -> None:
    """Raise OperationFailed (nothing stopped) when a host does not offer ``version`` of every package."""
    if component != "office" or not hosts:
        return
    packages = office_packages(inventory)
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        found = dict(zip(hosts, pool.map(lambda h: host_missing(run, h, packages, version), hosts), strict=True))
    problems = [f"{host}: {', '.join(items)}" for host, items in found.items() if items]
    if problems:
        raise OperationFailed(f"pre-flight: version {version} is not available for every host; nothing was "
                              f"stopped ({'; '.join(problems)[:600]})")


def unhealthy_now(failures: Iterable[str]) -> list[str]:
    """``tenant/check`` keys of the failures reported as ``tenant/check: detail`` (pure)."""
    return sorted({f.split(":", 1)[0].strip() for f in failures})
