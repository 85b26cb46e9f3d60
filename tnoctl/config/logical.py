"""The logical pass: rules a schema cannot express, within one tenant and across tenants.

Per tenant (cacheable, depends only on the file and the vault names): slug equals file name,
enabled service has a placement, mailbox domains belong to the tenant, no duplicate addresses or
domains, vault variables exist. Across tenants (cheap, runs on small summaries): duplicate slugs,
domains and INSEE codes (naming both files), placement on a host of the right group, platform
backup host in group backup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tnoctl.config.schema import Tenant

GROUP_OF_SERVICE = {"mail": "mail", "office": "office"}


def summary(tenant: Tenant) -> dict[str, Any]:
    """The few facts the cross-tenant rules need (cached; keep it small)."""
    return {
        "slug": tenant.slug,
        "insee": tenant.insee,
        "domains": list(tenant.domains),
        "services": list(tenant.services),
        "placement": {"mail": tenant.placement.mail, "office": tenant.placement.office},
    }


def tenant_rules(tenant: Tenant, stem: str, vault_names: frozenset[str] | None) -> list[str]:
    """`field: message` for every rule the tenant breaks on its own."""
    errors: list[str] = []
    if tenant.slug != stem:
        errors.append(f"slug: {tenant.slug!r} must equal the file name ({stem!r})")
    for service in tenant.services:
        if getattr(tenant.placement, service) is None:
            errors.append(f"placement.{service}: service {service!r} is enabled but has no placement")
    seen_domains: set[str] = set()
    for i, domain in enumerate(tenant.domains):
        if domain in seen_domains:
            errors.append(f"domains[{i}]: {domain!r} is listed twice")
        seen_domains.add(domain)
    addresses: dict[str, int] = {}
    for i, box in enumerate(tenant.mailboxes):
        domain = box.domain or tenant.primary_domain
        if domain not in seen_domains:
            errors.append(f"mailboxes[{i}].domain: {domain!r} is not one of the tenant's domains")
        address = f"{box.local}@{domain}"
        if address in addresses:
            errors.append(f"mailboxes[{i}]: duplicate address {address} (also mailboxes[{addresses[address]}])")
        else:
            addresses[address] = i
        if vault_names is not None and box.password_vault not in vault_names:
            errors.append(f"mailboxes[{i}].password_vault: {box.password_vault} is not defined in the vault")
    return errors


def _duplicates(what: str, items: Iterable[tuple[str, str]]) -> list[str]:
    """items: (file, value); one message per file that repeats a value first seen in another file."""
    first: dict[str, str] = {}
    errors: list[str] = []
    for rel, value in items:
        if value in first and first[value] != rel:
            errors.append(f"{rel}: {what}: {value!r} is also used by {first[value]}")
        first.setdefault(value, rel)
    return errors


def cross_rules(
    summaries: list[tuple[str, dict[str, Any]]], host_groups: dict[str, set[str]]
) -> list[str]:
    """`file: field: message` for rules spanning tenants and hosts.yml."""
    errors: list[str] = []
    errors += _duplicates("slug", ((rel, s["slug"]) for rel, s in summaries))
    errors += _duplicates("insee", ((rel, s["insee"]) for rel, s in summaries))
    errors += _duplicates("domains", ((rel, d) for rel, s in summaries for d in dict.fromkeys(s["domains"])))
    for rel, s in summaries:
        for service, host in s["placement"].items():
            if host is None:
                continue
            group = GROUP_OF_SERVICE[service]
            if host not in host_groups:
                errors.append(f"{rel}: placement.{service}: host {host!r} is not in hosts.yml")
            elif group not in host_groups[host]:
                errors.append(f"{rel}: placement.{service}: host {host!r} is not in group {group!r}")
    return errors
