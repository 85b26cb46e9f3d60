"""Pure planner for `plan`, `deploy` and `drift`: selection -> hosts, tenants and playbook calls.

Tenants share hosts, so the unit Ansible acts on is a host: selecting a tenant selects
the hosts that serve it (its mail host, its office host, which is also its proxy).
Nothing here touches the network or the disk; tests assert the exact calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tnoctl.errors import unknown
from tnoctl.plan.backup import setup_call
from tnoctl.plan.calls import PlaybookCall

SITE_PLAYBOOK = "site.yml"
MANAGED_GROUPS = ("mail", "office", "proxy", "backup")


class _Host(Protocol):
    name: str
    groups: Any


class _Inventory(Protocol):
    hosts: Any
    tenants: Any

    def slugs_on_host(self, name: str) -> Any: ...
    def row(self, slug: str) -> Any: ...


@dataclass(frozen=True)
class DeployPlan:
    """What a deploy (or its check+diff preview) will touch."""

    hosts: tuple[str, ...]
    tenants: tuple[str, ...]
    tenants_by_host: dict[str, tuple[str, ...]] = field(default_factory=dict)
    calls: tuple[PlaybookCall, ...] = ()
    # Run after ``calls`` by a real deploy only (never in a check pass): the backup machinery
    # (playbooks/backup.yml) of the selected mail/office hosts plus the backup host, so that
    # `deploy` then `backup run` works without a separate `backup setup`.
    setup_calls: tuple[PlaybookCall, ...] = ()


def managed_hosts(inventory: _Inventory) -> list[str]:
    """Hosts in any group a role deploys to, sorted."""
    return sorted(
        name for name, host in inventory.hosts.items() if set(host.groups) & set(MANAGED_GROUPS)
    )


def hosts_of_tenant(tenant: Any) -> list[str]:
    """The hosts a tenant lives on, from its placement."""
    placement = tenant.placement
    hosts = {h for h in (getattr(placement, "mail", None), getattr(placement, "office", None)) if h}
    return sorted(hosts)


def onboard_hosts(inventory: _Inventory, slug: str) -> list[str]:
    """Hosts that must learn a new tenant: its own, and every mail host (routing and TLS policy maps)."""
    mail_hosts = {name for name, host in inventory.hosts.items() if "mail" in set(host.groups)}
    return sorted(set(hosts_of_tenant(inventory.tenant(slug))) | mail_hosts)


def plan_deploy(
    inventory: _Inventory,
    *,
    tenants: list[str] | tuple[str, ...] = (),
    hosts: list[str] | tuple[str, ...] = (),
    action: str = "deploy",
    check: bool = False,
) -> DeployPlan:
    """Select hosts and tenants and return the site.yml call(s) for ``action``.

    ``tenants`` and ``hosts`` may be combined (union). With neither, the whole fleet.
    """
    all_hosts = managed_hosts(inventory)
    selected: set[str] = set()
    for slug in tenants:
        selected.update(hosts_of_tenant(inventory.row(slug)))
    for name in hosts:
        if name not in inventory.hosts:
            raise unknown("host", name, inventory.hosts)
        selected.add(name)
    limited = bool(tenants or hosts)
    target_hosts = sorted(selected) if limited else all_hosts
    by_host = {h: tuple(sorted(inventory.slugs_on_host(h))) for h in target_hosts}
    if tenants:
        target_tenants = sorted(set(tenants))
    else:
        target_tenants = sorted({slug for slugs in by_host.values() for slug in slugs})
    call = PlaybookCall(
        playbook=SITE_PLAYBOOK,
        extra_vars={"tno_action": action},
        limit=tuple(target_hosts) if limited else (),
        check=check,
        diff=check,
    )
    setup = () if check or action != "deploy" else backup_setup_calls(inventory, target_hosts, limited)
    return DeployPlan(
        hosts=tuple(target_hosts),
        tenants=tuple(target_tenants),
        tenants_by_host=by_host,
        calls=(call,),
        setup_calls=setup,
    )


def backup_setup_calls(inventory: _Inventory, hosts: list[str], limited: bool) -> tuple[PlaybookCall, ...]:
    """playbooks/backup.yml for the selected hosts that back up (mail, office) and the backup host.

    None when the selection has no such host or the platform names no backup host in the inventory.
    The backup host is always in the limit: the clients pin its host key, it authorizes their keys.
    """
    backup_host = getattr(getattr(inventory, "platform", None), "tno_backup_host", None)
    clients = [h for h in hosts if {"mail", "office"} & set(inventory.hosts[h].groups)]
    if not clients or backup_host not in inventory.hosts:
        return ()
    return (setup_call(tuple({*clients, backup_host}) if limited else ()),)
