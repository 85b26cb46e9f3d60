"""The logical pass: rules a schema cannot express, within one tenant and across tenants.

Per tenant (cacheable, depends only on the file and the vault names): slug equals file name,
enabled service has a placement, mailbox domains belong to the tenant, no duplicate addresses or
domains, vault variables exist and lie in the tenant's own namespace. Across tenants (cheap, runs
on small summaries): duplicate slugs, domains, INSEE codes and WOPI hosts (naming both files), vault
names claimed by a tenant with a longer namespace, WOPI hosts outside the tenant's domains (unless
the platform lists them), placement on a host of the right group.

Vault namespaces: tenant ``saint-priest`` owns the variables named ``tno_vault_saint_priest_*``;
``tno_vault_borg_*``, ``tno_vault_office_*`` and ``tno_vault_rspamd_*`` belong to the platform (borg
passphrases, office admin password, mail hosts' Rspamd controller passwords: hostsecrets.py) and no
mailbox may name them. Namespaces nest (``tno_vault_saint_`` contains
``tno_vault_saint_priest_``), so a name belongs to the tenant with the *longest* matching namespace:
``saint`` may not reference ``tno_vault_saint_priest_mairie`` while ``saint-priest`` exists. Names that
``tenant add`` generates are ``tno_vault_<slug, - as _>__<local>_<hash>`` (see newtenant.vault_name):
the double underscore can never continue another slug (slugs have no ``--``), so they nest in no
other tenant's namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tnoctl.config import mailrules
from tnoctl.config.schema import SpamThresholds, Tenant

GROUP_OF_SERVICE = {"mail": "mail", "office": "office"}
CANARY_LOCAL = "canary"
"""Local part of the mailbox the probes log in with (tnoctl.probes.targets); kept in the summary."""
PLATFORM_VAULT_PREFIXES = ("tno_vault_borg_", "tno_vault_office_", "tno_vault_dns_", "tno_vault_acme_",
                           "tno_vault_rspamd_")
"""Vault namespaces of the platform: never referenced by a tenant file."""


def vault_namespace(slug: str) -> str:
    """Prefix of the vault variables tenant ``slug`` owns: ``tno_vault_<slug, - as _>_``."""
    return "tno_vault_" + slug.replace("-", "_") + "_"


def wopi_host(url: str) -> str:
    """Host name of a WOPI URL (``https://cloud.bron.example:443/x`` -> ``cloud.bron.example``)."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0].lower()


def in_domains(host: str, domains: Iterable[str]) -> bool:
    """True when ``host`` is one of ``domains`` or a sub-domain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def summary(tenant: Tenant) -> dict[str, Any]:
    """The few facts the cross-tenant rules and the read verbs' rows need (cached; keep it small)."""
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "insee": tenant.insee,
        "pilot": tenant.pilot,
        "maintenance_window": tenant.maintenance_window,
        "mailboxes": len(tenant.mailboxes),
        "domains": list(tenant.domains),
        "services": list(tenant.services),
        "placement": {"mail": tenant.placement.mail, "office": tenant.placement.office},
        "vault_prefixes": _vault_prefixes(tenant),
        "wopi": [wopi_host(url) for url in tenant.office.wopi_hosts],
        **mailrules.summary(tenant),
        "backup": {k: v for k, v in tenant.backup.model_dump().items() if v is not None},
        "canary": _canary(tenant),
        "dns_zone": tenant.dns.zone,
    }


def _canary(tenant: Tenant) -> list[str] | None:
    """[address, vault variable] of the tenant's canary mailbox (the probes' login), or None."""
    for box in tenant.mailboxes:
        if box.local == CANARY_LOCAL:
            return [f"{box.local}@{box.domain or tenant.primary_domain}", box.password_vault]
    return None


def _vault_prefixes(tenant: Tenant) -> list[str]:
    """Where the tenant's vault names could enter a nested namespace (kept small for the cache).

    For ``tno_vault_saint_priest_mairie`` of tenant ``saint``: the remainder ``priest_mairie`` gives
    ``priest_``, i.e. the namespace of a tenant ``saint-priest``. Remainders starting with ``_`` (the
    names ``tenant add`` writes) can nest in no slug's namespace. 35,000 tenants x 50 mailboxes would
    otherwise put 1.8 M names in the validation cache.
    """
    own = vault_namespace(tenant.slug)
    found: set[str] = set()
    for box in tenant.mailboxes:
        name = box.password_vault
        if not name.startswith(own) or name.startswith(own + "_"):
            continue
        rest = name[len(own):]
        cut = rest.find("_")
        while cut != -1:
            found.add(rest[: cut + 1])
            cut = rest.find("_", cut + 1)
    return sorted(found)


def tenant_rules(tenant: Tenant, stem: str, vault_names: frozenset[str] | None) -> list[str]:
    """`field: message` for every rule the tenant breaks on its own."""
    errors: list[str] = []
    if tenant.slug != stem:
        errors.append(f"slug: {tenant.slug!r} must equal the file name ({stem!r})")
    space = vault_namespace(tenant.slug)
    reserved = next((p for p in PLATFORM_VAULT_PREFIXES if space.startswith(p) or p.startswith(space)), None)
    if reserved is not None:
        errors.append(f"slug: {tenant.slug!r} is reserved (its vault namespace {space}* overlaps the "
                      f"platform's {reserved}*)")
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
        if reserved is None and not box.password_vault.startswith(space):
            errors.append(f"mailboxes[{i}].password_vault: {box.password_vault} is outside the tenant's "
                          f"vault namespace ({space}*)")
        elif vault_names is not None and box.password_vault not in vault_names:
            errors.append(f"mailboxes[{i}].password_vault: {box.password_vault} is not defined in the vault")
    errors += mailrules.tenant_rules(tenant, set(addresses))
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


def _foreign_vault_names(summaries: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Vault names that lie in a longer (nested) namespace of another tenant: that tenant owns them."""
    owner = {vault_namespace(s["slug"]): (rel, s["slug"]) for rel, s in summaries}
    errors: list[str] = []
    for rel, s in summaries:
        own = vault_namespace(s["slug"])
        for prefix in s.get("vault_prefixes", ()):
            other = owner.get(own + prefix)
            if other is not None and other[1] != s["slug"]:
                errors.append(f"{rel}: mailboxes: password_vault names starting with {own + prefix} belong to "
                              f"tenant {other[1]!r} ({other[0]}), not to this one")
    return errors


def _wopi_rules(summaries: list[tuple[str, dict[str, Any]]], extra_wopi: dict[str, list[str]]) -> list[str]:
    """WOPI hosts lie in the tenant's own domains unless the platform lists them for that tenant."""
    errors: list[str] = []
    for rel, s in summaries:
        allowed = {wopi_host(url) for url in extra_wopi.get(s["slug"], ())}
        for i, host in enumerate(s.get("wopi", ())):
            if not in_domains(host, s["domains"]) and host not in allowed:
                errors.append(f"{rel}: office.wopi_hosts[{i}]: {host!r} is outside the tenant's domains "
                              "(allow it in platform.yml tno_office_extra_wopi_hosts)")
    return errors


def _zone_rules(summaries: list[tuple[str, dict[str, Any]]], tls_mode: str | None) -> list[str]:
    """An external zone cannot take the ACME DNS-01 challenges: they are RFC 2136 updates on tno_dns_server."""
    if tls_mode != "acme":
        return []
    return [f"{rel}: dns.zone: 'external' is not possible with tno_tls_mode acme (its DNS-01 challenges are "
            "published on the platform's tno_dns_server); serve the zone there (zone: platform) or use "
            "tno_tls_mode files" for rel, s in summaries if s.get("dns_zone") == "external"]


def cross_rules(
    summaries: list[tuple[str, dict[str, Any]]], host_groups: dict[str, set[str]],
    extra_wopi: dict[str, list[str]] | None = None, spam: SpamThresholds | None = None,
    tls_mode: str | None = None,
) -> list[str]:
    """`file: field: message` for rules spanning tenants, hosts.yml and the platform (WOPI exceptions, spam
    thresholds, the TLS mode against external DNS zones)."""
    errors: list[str] = []
    errors += _duplicates("slug", ((rel, s["slug"]) for rel, s in summaries))
    errors += _duplicates("insee", ((rel, s["insee"]) for rel, s in summaries))
    errors += _duplicates("domains", ((rel, d) for rel, s in summaries for d in dict.fromkeys(s["domains"])))
    errors += _duplicates("office.wopi_hosts",
                          ((rel, h) for rel, s in summaries for h in dict.fromkeys(s.get("wopi", ()))))
    errors += _wopi_rules(summaries, extra_wopi or {})
    errors += _foreign_vault_names(summaries)
    errors += _zone_rules(summaries, tls_mode)
    errors += mailrules.cross_rules(summaries, spam)
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
