"""Pure planner for `tnoctl upgrade`: which hosts, in which waves, carrying which tenants.

Tenants share hosts, so the unit of rollout is a host with every tenant it serves. Waves are
given as a list like ``canary,25%,100%``:

- ``canary``: the hosts carrying a pilot tenant (``pilot: true``), or the first host when no
  tenant is a pilot;
- ``N%``: cumulative share of the selected hosts: after this wave, ceil(N% of all) hosts are done;
- ``N`` (an integer): N more hosts.

Hosts are taken in name order; a host belongs to exactly one wave; empty waves are dropped and
the last wave always takes whatever is left. Maintenance windows are evaluated per host (every
tenant on it must be inside its window) at ``now``; the executor checks them again when it
reaches the host, since a rollout can outlast a window. No I/O here: tests assert plans exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tnoctl.config.window import Window
from tnoctl.errors import InvalidInput
from tnoctl.plan.calls import PlaybookCall

UPGRADE_PLAYBOOK = "upgrade.yml"
COMPONENTS = ("office", "mail")
VERSION_VAR = {"office": "tno_office_version", "mail": "tno_mail_release"}
"""Platform variable pinning each component's version (what ``--to`` moves)."""
DEFAULT_WAVES = "canary,25%,100%"
_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+~-]{0,39}$")
_WAVE_RE = re.compile(r"^(canary|[1-9][0-9]{0,5}|[1-9][0-9]?%|100%)$")


@dataclass(frozen=True)
class HostStep:
    """One host of a wave: its tenants, and whether their maintenance windows allow it now."""

    host: str
    tenants: tuple[str, ...]
    window_ok: bool = True
    closed_windows: tuple[str, ...] = ()  # "slug (Sun 02:00-05:00)" for each tenant outside its window

    @property
    def window_note(self) -> str:
        """Human reason the host is deferred (empty when its windows allow it)."""
        return "" if self.window_ok else "outside maintenance window: " + ", ".join(self.closed_windows)


@dataclass(frozen=True)
class Wave:
    """Hosts upgraded together (in parallel up to the batch size); the next wave waits for this one."""

    index: int
    name: str
    hosts: tuple[HostStep, ...]


@dataclass(frozen=True)
class UpgradePlan:
    """A rollout of one component to one version."""

    component: str
    to_version: str
    waves: tuple[Wave, ...]
    batch: int = 1
    max_failures: int = 0
    ignore_windows: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def hosts(self) -> list[HostStep]:
        """Every host of the plan, in rollout order."""
        return [step for wave in self.waves for step in wave.hosts]

    @property
    def tenants(self) -> list[str]:
        """Every tenant the rollout touches, sorted."""
        return sorted({t for step in self.hosts for t in step.tenants})

    def wave_of(self, host: str) -> int:
        """Index of the wave that carries ``host``."""
        return next(w.index for w in self.waves for s in w.hosts if s.host == host)


def check_version(version: str) -> str:
    """A package version / release string, or InvalidInput naming --to."""
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise InvalidInput(f"--to: {version!r} is not a version (digits first, then [0-9A-Za-z.+~-], max 40)")
    return version


def parse_waves(text: str) -> list[str]:
    """``"canary,25%,100%"`` -> ``["canary", "25%", "100%"]``, or InvalidInput naming --waves."""
    specs = [part.strip() for part in text.split(",") if part.strip()]
    if not specs:
        raise InvalidInput("--waves: empty; give e.g. 'canary,25%,100%'")
    for spec in specs:
        if not _WAVE_RE.match(spec):
            raise InvalidInput(f"--waves: {spec!r} is not 'canary', a host count (e.g. 2) or a share (e.g. 25%)")
    if specs.count("canary") > 1 or ("canary" in specs and specs[0] != "canary"):
        raise InvalidInput("--waves: 'canary' may appear once, as the first wave")
    return specs


def component_hosts(inventory: Any, component: str) -> list[str]:
    """Hosts in the component's group (``office`` or ``mail``), sorted."""
    return sorted(name for name, host in inventory.hosts.items() if component in host.groups)


def host_tenants(inventory: Any, host: str) -> list[Any]:
    """Every tenant the host serves, whatever the service (an OS upgrade touches them all)."""
    return [t for t in inventory.tenants
            if any(getattr(t.placement, s, None) == host for s in COMPONENTS if s in t.services)]


def _tenants_of(inventory: Any, host: str, component: str) -> list[Any]:
    if component == "os":  # `upgrade os` (tnoctl/plan/upgrade_os.py): every tenant of the host
        return host_tenants(inventory, host)
    return [t for t in inventory.tenants if getattr(t.placement, component, None) == host and component in t.services]


def split_waves(hosts: list[str], specs: list[str], pilots: set[str]) -> list[tuple[str, list[str]]]:
    """Assign each host to one wave per the specs (see module docstring)."""
    remaining = list(hosts)
    total = len(hosts)
    done = 0
    waves: list[tuple[str, list[str]]] = []
    for position, spec in enumerate(specs):
        last = position == len(specs) - 1
        if last:
            take = list(remaining)
        elif spec == "canary":
            take = [h for h in remaining if h in pilots] or remaining[:1]
        elif spec.endswith("%"):
            target = math.ceil(total * int(spec[:-1]) / 100)
            take = remaining[: max(0, target - done)]
        else:
            take = remaining[: int(spec)]
        remaining = [h for h in remaining if h not in take]
        done += len(take)
        waves.append((spec, take))
    return [(name, members) for name, members in waves if members]


def window_step(host: str, tenants: list[Any], now: datetime) -> HostStep:
    closed = [f"{t.slug} ({t.maintenance_window})" for t in tenants
              if t.maintenance_window and not Window.parse(t.maintenance_window).contains(now)]
    return HostStep(host, tuple(t.slug for t in tenants), not closed, tuple(closed))


def window_check(inventory: Any, step: HostStep, component: str, now: datetime) -> HostStep:
    """The same host step with its windows re-evaluated at ``now`` (the executor calls it per host)."""
    return window_step(step.host, _tenants_of(inventory, step.host, component), now)


def plan_upgrade(
    inventory: Any,
    component: str,
    to_version: str,
    *,
    now: datetime,
    waves: str = DEFAULT_WAVES,
    hosts: tuple[str, ...] | list[str] = (),
    tenants: tuple[str, ...] | list[str] = (),
    batch: int = 1,
    max_failures: int = 0,
    ignore_windows: bool = False,
) -> UpgradePlan:
    """Plan the rollout of ``component`` to ``to_version`` over the selected hosts."""
    if component not in COMPONENTS:
        raise InvalidInput(f"COMPONENT: {component!r} is not one of {', '.join(COMPONENTS)}")
    check_version(to_version)
    if batch < 1:
        raise InvalidInput("--batch: must be at least 1")
    if max_failures < 0:
        raise InvalidInput("--max-failures: must be 0 or more")
    specs = parse_waves(waves)
    candidates = component_hosts(inventory, component)
    for name in hosts:
        if name not in candidates:
            raise InvalidInput(f"--hosts: {name!r} is not a host of group {component!r} "
                               f"({', '.join(candidates) or 'none'})")
    selected = [h for h in candidates if not hosts or h in hosts]
    if tenants:
        wanted = set()
        for slug in tenants:
            tenant = inventory.tenant(slug)  # raises InvalidInput for an unknown tenant
            placed = getattr(tenant.placement, component, None)
            if component not in tenant.services or not placed:
                raise InvalidInput(f"--tenant: {slug} has no {component} service")
            wanted.add(placed)
        selected = [h for h in selected if h in wanted]
    if not selected:
        raise InvalidInput(f"nothing to upgrade: the selection has no {component} host")
    by_host = {h: _tenants_of(inventory, h, component) for h in selected}
    pilots = {h for h, ts in by_host.items() if any(getattr(t, "pilot", False) for t in ts)}
    planned = []
    for index, (name, members) in enumerate(split_waves(selected, specs, pilots)):
        steps = tuple(window_step(h, by_host[h], now) for h in members)
        planned.append(Wave(index, name, steps))
    return UpgradePlan(component, to_version, tuple(planned), batch, max_failures, ignore_windows)


def apply_call(plan: UpgradePlan, host: str, version: str, operation_id: str, *, rollback: bool = False,
               snapshot_dir: str = "") -> PlaybookCall:
    """The playbook call that moves one host to ``version`` (the target, or back on rollback)."""
    extra: dict[str, Any] = {
        "tno_action": "upgrade",
        "tno_upgrade_component": plan.component,
        "tno_upgrade_id": operation_id,
        "tno_upgrade_rollback": rollback,
        VERSION_VAR[plan.component]: version,
    }
    if snapshot_dir:
        extra["tno_upgrade_snapshot_dir"] = snapshot_dir
    return PlaybookCall(playbook=UPGRADE_PLAYBOOK, extra_vars=extra, limit=(host,))


def plan_to_dict(plan: UpgradePlan) -> dict[str, Any]:
    """The plan as stored in the operation journal (plan.json): --resume replays exactly this."""
    return {
        "component": plan.component,
        "to_version": plan.to_version,
        "batch": plan.batch,
        "max_failures": plan.max_failures,
        "ignore_windows": plan.ignore_windows,
        "options": dict(plan.options),
        "waves": [
            {"index": w.index, "name": w.name,
             "hosts": [{"host": s.host, "tenants": list(s.tenants)} for s in w.hosts]}
            for w in plan.waves
        ],
    }


def plan_from_dict(data: dict[str, Any]) -> UpgradePlan:
    """Rebuild a stored plan (windows are re-checked by the executor when it reaches each host)."""
    waves = tuple(
        Wave(int(w["index"]), str(w["name"]),
             tuple(HostStep(str(h["host"]), tuple(h["tenants"])) for h in w["hosts"]))
        for w in data["waves"]
    )
    return UpgradePlan(str(data["component"]), str(data["to_version"]), waves, int(data["batch"]),
                       int(data["max_failures"]), bool(data["ignore_windows"]), dict(data.get("options", {})))
