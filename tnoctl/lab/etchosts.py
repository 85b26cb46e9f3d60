"""Pure rendering of lab names: each host's /etc/hosts and the certificate SANs per host.

Lab hosts have no DNS: every name a test or a service uses must be in /etc/hosts: the lab
hosts (`mail1.lab.test mail1`), the gateway (`labgw`) and every tenant's service names
pointing at the host serving them (tnoctl.config.maildocs: `mail./smtp./imap./autoconfig./mta-sts.<domain>`
→ mail host, `office.<domain>` → office host). The host certificates of the lab CA carry the same names.
"""

from __future__ import annotations

from tnoctl.config.maildocs import MAIL_NAMES, OFFICE_NAMES
from tnoctl.lab.topology import Topology

GATEWAY = "198.18.0.1"
LAB_DOMAIN = "lab.test"


def service_names(topology: Topology) -> dict[str, list[str]]:
    """host name → tenant service names it serves, in tenant/domain order, without duplicates."""
    names: dict[str, list[str]] = {host.name: [] for host in topology.hosts}
    for tenant in topology.tenants:
        for domain in tenant.domains:
            if tenant.mail_host in names:
                names[tenant.mail_host].extend(f"{svc}.{domain}" for svc in MAIL_NAMES)
            if tenant.office_host in names:
                names[tenant.office_host].extend(f"{svc}.{domain}" for svc in OFFICE_NAMES)
    return {host: list(dict.fromkeys(values)) for host, values in names.items()}


def render_hosts_file(topology: Topology) -> str:
    """/etc/hosts content, the same on every lab host (its own name resolves to its lab address)."""
    lines = [
        "# written by tnoctl lab at every boot; lab hosts have no DNS",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{GATEWAY}\tlabgw",
    ]
    services = service_names(topology)
    for host in topology.hosts:
        names = [f"{host.name}.{LAB_DOMAIN}", host.name, *services[host.name]]
        lines.append(f"{host.address}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def cert_sans(topology: Topology) -> dict[str, list[str]]:
    """host name → DNS SANs for tnoctl.lab.ca.ensure_host_certs (host names + services served).

    The bare host name is certified only where the lab CA's name constraints permit it (the five
    standard hosts); any other host (e.g. bench/upgrade.py's office3..) gets ``<host>.lab.test``.
    """
    from tnoctl.lab.ca import LAB_HOST_NAMES

    services = service_names(topology)
    return {
        host.name: [*([host.name] if host.name in LAB_HOST_NAMES else []), f"{host.name}.{LAB_DOMAIN}",
                    *services[host.name]]
        for host in topology.hosts
    }
