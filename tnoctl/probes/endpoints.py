"""Service endpoints of the tenants (what blackbox probes and tnoctl's own probes connect to).

Why a module of its own: `tnoctl monitoring targets` needs the endpoints only; importing the probe
modules too (ssl, cryptography's x509, http.server) was a fifth of that verb's time at 35,000
communes (issue 18). :mod:`tnoctl.probes.targets` builds the probes from the same endpoints and
re-exports these names. Connections go to the host *address* from hosts.yml while TLS uses
``mail.<domain>`` / ``office.<domain>`` as server name. The inventory is duck-typed (``.tenants``,
``.hosts[name].address``) so tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from tnoctl.config import gcpause


class Endpoint(NamedTuple):
    """One network service of one tenant, as reached from the monitoring host (a tuple: 175,000 at scale)."""

    tenant: str
    component: str  # mail | office
    service: str  # smtp | submission | imap | imaps | https
    host: str
    address: str
    port: int
    server_name: str


SERVICES: tuple[tuple[str, str, int, str], ...] = (
    # component, service, port, server-name prefix
    ("mail", "smtp", 25, "mail"),
    ("mail", "submission", 587, "mail"),
    ("mail", "imap", 143, "mail"),
    ("mail", "imaps", 993, "mail"),
    ("office", "https", 443, "office"),
)


def _placement(tenant: Any, component: str) -> str | None:
    placement = tenant.placement
    return placement.get(component) if isinstance(placement, dict) else getattr(placement, component, None)


def primary_domain(tenant: Any) -> str:
    """The tenant's primary (first) mail domain."""
    return getattr(tenant, "primary_domain", None) or tenant.domains[0]


_BY_COMPONENT: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = tuple(
    (component, next(prefix for c, _s, _p, prefix in SERVICES if c == component) + ".",
     tuple((service, port) for c, service, port, _prefix in SERVICES if c == component))
    for component in dict.fromkeys(c for c, _s, _p, _prefix in SERVICES))
"""SERVICES grouped by component, in their order: (component, server-name prefix + ".", ((service, port), ...))."""
_new = tuple.__new__


def endpoints(inventory: Any, only: Iterable[str] | None = None) -> list[Endpoint]:
    """Every service endpoint of every (selected) tenant, in tenant order (the order of SERVICES).

    One pass per tenant with the server name built once per component and the tuples made by
    ``tuple.__new__``, the collector paused: 175,000 endpoints at 35,000 communes (issue 18).
    """
    wanted = set(only) if only else None
    addresses = {name: host.address for name, host in inventory.hosts.items()}
    out: list[Endpoint] = []
    append = out.append
    with gcpause.paused():
        for tenant in inventory.tenants:
            slug = tenant.slug
            if wanted is not None and slug not in wanted:
                continue
            services = getattr(tenant, "services", ("mail", "office"))
            domain = primary_domain(tenant)
            for component, prefix, ports in _BY_COMPONENT:
                host = _placement(tenant, component) if component in services else None
                if not host or host not in addresses:
                    continue
                address, server_name = addresses[host], prefix + domain
                for service, port in ports:
                    append(_new(Endpoint, (slug, component, service, host, address, port, server_name)))
    return out
