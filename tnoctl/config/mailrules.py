"""Logical rules of a tenant's mail addresses: aliases, forwards and the RFC 2142 mailbox (issue 14).

Why: an alias decides who reads a commune's mail. Within one tenant (cacheable, like the rest of
logical.tenant_rules): an alias lives in one of the tenant's own domains and never shadows a
mailbox or another alias; `postmaster@`/`abuse@` are reserved (routed by ``mail.postmaster``, which
must name one of the tenant's mailboxes); `to` targets are mailboxes or aliases of this tenant;
`forward` targets lie outside the tenant's domains. Across tenants (cross_rules): a `forward` may
not point into another commune's domain, so an explicit external forward is really external and no
tenant file can route mail into, or claim, another commune's addresses.
"""

from __future__ import annotations

from typing import Any

from tnoctl.config.schema import SpamThresholds, Tenant, check_order

RFC2142 = ("postmaster", "abuse")
"""Local parts every tenant domain answers (RFC 2142), routed to the tenant's postmaster mailbox."""


def postmaster(tenant: Tenant) -> str | None:
    """The mailbox receiving postmaster@/abuse@ of the tenant's domains (default: its first mailbox)."""
    if tenant.mail.postmaster is not None:
        return tenant.mail.postmaster
    if tenant.mailboxes:
        box = tenant.mailboxes[0]
        return f"{box.local}@{box.domain or tenant.primary_domain}"
    return None


def tenant_rules(tenant: Tenant, mailbox_addresses: set[str]) -> list[str]:
    """`field: message` for every alias/postmaster rule the tenant breaks on its own."""
    errors: list[str] = []
    domains = set(tenant.domains)
    if tenant.mail.postmaster is not None and tenant.mail.postmaster not in mailbox_addresses:
        errors.append(f"mail.postmaster: {tenant.mail.postmaster} is not one of the tenant's mailboxes")
    aliases: dict[str, int] = {}
    for i, alias in enumerate(tenant.mail.aliases):
        where = f"mail.aliases[{i}]"
        domain = alias.domain or tenant.primary_domain
        address = f"{alias.local}@{domain}"
        if domain not in domains:
            errors.append(f"{where}.domain: {domain!r} is not one of the tenant's domains")
        if alias.local in RFC2142:
            errors.append(f"{where}.local: {alias.local}@ is reserved (RFC 2142): it goes to mail.postmaster")
        if address in mailbox_addresses:
            errors.append(f"{where}: {address} is a mailbox of this tenant")
        if address in aliases:
            errors.append(f"{where}: duplicate alias {address} (also mail.aliases[{aliases[address]}])")
        aliases.setdefault(address, i)
    known = mailbox_addresses | set(aliases)
    for i, alias in enumerate(tenant.mail.aliases):
        own = f"{alias.local}@{alias.domain or tenant.primary_domain}"
        for j, target in enumerate(alias.to):
            where = f"mail.aliases[{i}].to[{j}]"
            if target.rsplit("@", 1)[1] not in domains:
                errors.append(f"{where}: {target} is outside the tenant's domains (an address outside the "
                              "platform goes under `forward`)")
            elif target == own:
                errors.append(f"{where}: {target} is the alias itself")
            elif target not in known:
                errors.append(f"{where}: {target} is not a mailbox or alias of this tenant")
        for j, target in enumerate(alias.forward):
            if target.rsplit("@", 1)[1] in domains:
                errors.append(f"mail.aliases[{i}].forward[{j}]: {target} is in the tenant's own domains "
                              "(list it under `to`)")
    return errors


def summary(tenant: Tenant) -> dict[str, Any]:
    """What the cross-tenant mail rules need (kept small for the validation cache)."""
    forward = sorted({t.rsplit("@", 1)[1] for a in tenant.mail.aliases for t in a.forward})
    spam = {k: v for k, v in tenant.mail.spam.model_dump().items() if v is not None}
    return {"forward_domains": forward, "spam": spam}


def cross_rules(summaries: list[tuple[str, dict[str, Any]]], thresholds: SpamThresholds | None) -> list[str]:
    """Forwards into another commune's domain; tenant thresholds not ordered once the platform's fill the gaps."""
    owner = {d: (rel, s["slug"]) for rel, s in summaries for d in s["domains"]}
    errors: list[str] = []
    for rel, s in summaries:
        for domain in s.get("forward_domains", ()):
            other = owner.get(domain)
            if other is not None and other[1] != s["slug"]:
                errors.append(f"{rel}: mail.aliases: a forward to {domain} goes into tenant {other[1]!r} "
                              f"({other[0]}): forwards must leave the platform")
        spam = s.get("spam") or {}
        if spam and thresholds is not None:
            merged = {**thresholds.model_dump(), **spam}
            try:
                check_order(merged["reject"], merged["add_header"], merged["greylist"])
            except ValueError as exc:
                errors.append(f"{rel}: mail.spam: with the platform's tno_mail_spam_thresholds, {exc}")
    return errors
