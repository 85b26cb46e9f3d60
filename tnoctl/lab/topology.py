"""Which hosts and tenants the lab has, read from the lab inventory with the product's loader.

`tnoctl.config.load_inventory` reads and validates the lab inventory like any other; this module
only checks what the lab itself needs (addresses inside 198.18.0.0/24, the operator account as
``ansible_user`` with ``ansible_become``) and keeps the few facts the lab uses: hosts (ordered by
address) and, per tenant, domains, placement and mailboxes (for /etc/hosts names, certificate
SANs and `lab credentials`). The loaded Inventory is kept for the SSH factory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnoctl.config.hosts import Host
from tnoctl.config.load import load_inventory
from tnoctl.config.schema import Tenant
from tnoctl.errors import InvalidInput
from tnoctl.lab.base import OPERATOR

LAB_NETWORK = ipaddress.ip_network("198.18.0.0/24")


@dataclass(frozen=True)
class LabHost:
    """One lab host: name, address on the lab bridge, inventory groups."""

    name: str
    address: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabTenant:
    """What the lab needs of a tenant: its domains and where its services run."""

    slug: str
    domains: tuple[str, ...]
    mail_host: str | None
    office_host: str | None
    mailboxes: tuple[tuple[str, str], ...] = ()
    """(address, password_vault variable name) per mailbox."""


@dataclass(frozen=True)
class Topology:
    """The lab's hosts (in inventory order) and tenants."""

    hosts: tuple[LabHost, ...]
    tenants: tuple[LabTenant, ...] = field(default=())
    inventory: Any = field(default=None, compare=False, repr=False)
    """The loaded ``tnoctl.config.load.Inventory`` (None in tests that build a Topology by hand)."""

    def host(self, name: str) -> LabHost:
        """The host called `name`, or InvalidInput listing the valid names."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise InvalidInput(f"no lab host {name!r}; lab hosts: {', '.join(h.name for h in self.hosts)}")


def _in_lab(address: object) -> bool:
    """True when `address` is an IP address inside the lab network."""
    try:
        return ipaddress.ip_address(str(address)) in LAB_NETWORK
    except ValueError:
        return False


def lab_hosts(hosts: Mapping[str, Host]) -> tuple[LabHost, ...]:
    """LabHosts (by address) of loaded inventory hosts: each in 198.18.0.0/24, each logging in as the operator."""
    out: list[LabHost] = []
    errors: list[str] = []
    for name, host in hosts.items():
        if not _in_lab(host.address):
            errors.append(f"hosts.yml: {name}: ansible_host must be in {LAB_NETWORK} (got {host.address})")
            continue
        user = host.vars.get("ansible_user")
        if user != OPERATOR or not host.vars.get("ansible_become"):
            source = host.var_sources.get("ansible_user", "group_vars/all/connection.yml")
            errors.append(f"{source}: {name}: ansible_user must be {OPERATOR!r} with ansible_become: true "
                          f"(lab hosts have that operator account; root cannot log in), got {user!r}")
            continue
        out.append(LabHost(name=name, address=host.address, groups=tuple(sorted(host.groups - {"all"}))))
    if errors:
        raise InvalidInput("the lab inventory's hosts are not usable for the lab", details=errors)
    if not out:
        raise InvalidInput("hosts.yml: no hosts")
    return tuple(sorted(out, key=lambda h: ipaddress.ip_address(h.address)))


def lab_tenant(tenant: Tenant) -> LabTenant:
    """LabTenant from a validated tenant (tnoctl.config.schema.Tenant)."""
    mailboxes = tuple((f"{mb.local}@{mb.domain or tenant.primary_domain}", mb.password_vault)
                      for mb in tenant.mailboxes)
    return LabTenant(
        slug=tenant.slug,
        domains=tuple(tenant.domains),
        mail_host=tenant.placement.mail if "mail" in tenant.services else None,
        office_host=tenant.placement.office if "office" in tenant.services else None,
        mailboxes=mailboxes,
    )


def load(inventory: Path) -> Topology:
    """Hosts and tenants of the lab inventory, through the product's loader (all errors at once)."""
    loaded = load_inventory(inventory)
    return Topology(hosts=lab_hosts(loaded.hosts), tenants=tuple(lab_tenant(t) for t in loaded.tenants),
                    inventory=loaded)
