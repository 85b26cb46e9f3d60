"""Which hosts and tenants the lab has, read from the lab inventory.

The lab's hosts and addresses are those of `inventories/lab/hosts.yml`; the tenants (for
/etc/hosts service names and certificate SANs) come from its tenant files. This is the one
small place that reads them, so it can switch to `tnoctl.config.load_inventory` wholesale.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tnoctl.errors import InvalidInput

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

    def host(self, name: str) -> LabHost:
        """The host called `name`, or InvalidInput listing the valid names."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise InvalidInput(f"no lab host {name!r}; lab hosts: {', '.join(h.name for h in self.hosts)}")


def _walk_groups(node: dict[str, Any], group: str, out: dict[str, tuple[str | None, set[str]]]) -> None:
    """Collect host -> (ansible_host, groups) from an Ansible YAML inventory group tree."""
    for name, hostvars in (node.get("hosts") or {}).items():
        address, groups = out.get(name, (None, set()))
        address = (hostvars or {}).get("ansible_host", address)
        groups.add(group)
        out[name] = (address, groups)
    for child, sub in (node.get("children") or {}).items():
        _walk_groups(sub or {}, child, out)


def _in_lab(address: object) -> bool:
    """True when `address` is an IP address inside the lab network."""
    try:
        return ipaddress.ip_address(str(address)) in LAB_NETWORK
    except ValueError:
        return False


def parse_hosts(data: dict[str, Any], source: str) -> tuple[LabHost, ...]:
    """LabHosts from the parsed hosts.yml; every host needs an ansible_host inside 198.18.0.0/24."""
    found: dict[str, tuple[str | None, set[str]]] = {}
    for group, node in (data or {}).items():
        _walk_groups(node or {}, group, found)
    hosts: list[LabHost] = []
    errors: list[str] = []
    for name, (address, groups) in found.items():
        if not _in_lab(address):
            errors.append(f"{source}: {name}: ansible_host must be in {LAB_NETWORK} (got {address})")
            continue
        hosts.append(LabHost(name=name, address=str(address), groups=tuple(sorted(groups - {"all"}))))
    if errors:
        raise InvalidInput("the lab inventory's hosts are not usable for the lab", details=errors)
    if not hosts:
        raise InvalidInput(f"{source}: no hosts")
    return tuple(hosts)


def parse_tenant(data: dict[str, Any]) -> LabTenant:
    """LabTenant from one parsed tenant file (schema validation is tnoctl.config's job)."""
    domains = tuple(data.get("domains") or ())
    placement = data.get("placement") or {}
    mailboxes = tuple(
        (f"{mb['local']}@{mb.get('domain') or domains[0]}", str(mb.get("password_vault", "")))
        for mb in data.get("mailboxes") or ()
    )
    return LabTenant(
        slug=str(data["slug"]),
        domains=domains,
        mail_host=placement.get("mail"),
        office_host=placement.get("office"),
        mailboxes=mailboxes,
    )


def load(inventory: Path) -> Topology:
    """Read hosts.yml and tenants/*.yml of the lab inventory."""
    hosts_file = inventory / "hosts.yml"
    try:
        hosts = parse_hosts(yaml.safe_load(hosts_file.read_text()), str(hosts_file))
    except OSError as exc:
        raise InvalidInput(f"cannot read the lab inventory: {hosts_file}: {exc.strerror}") from exc
    tenants = tuple(
        parse_tenant(yaml.safe_load(path.read_text()) or {})
        for path in sorted((inventory / "tenants").glob("*.yml"))
    )
    return Topology(hosts=hosts, tenants=tenants)
