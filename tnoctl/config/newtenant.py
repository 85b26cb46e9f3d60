"""Build, check and write a new tenant file (`tnoctl tenant add`), vault secrets included.

The new file is checked together with the whole inventory (schema, per-tenant and cross-tenant
rules) *before* anything is written; the tenant file is written atomically (temp + rename).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from tnoctl.config import logical, vault, yamlio
from tnoctl.config.load import Inventory
from tnoctl.config.schema import SLUG_RE, Tenant
from tnoctl.config.validate import check_doc
from tnoctl.config.vault import VAULT_REL
from tnoctl.errors import InvalidInput


def vault_name(slug: str, local: str, domain: str) -> str:
    """``tno_vault_<slug, - as _>__<local, readable>_<hash of local@domain>``: one name per address.

    The old ``tno_vault_<slug>_<local>`` mapped ``saint`` + ``priest.mairie`` and ``saint-priest`` +
    ``mairie`` to one variable (one shared password). Here the slug part ends at the first ``__``
    (slugs have no ``--``), so it is the tenant's own namespace and no other; the readable local part
    is lossy (``.``, ``+``, ``-`` become ``_``, cut at 48), the 8 hex digits of sha256(local@domain)
    tell apart addresses it would merge. Existing names stay valid: validation only asks that a name
    lie in its tenant's namespace (tnoctl.config.logical).
    """
    readable = re.sub(r"[^a-z0-9]", "_", local.lower())[:48].strip("_") or "x"
    digest = hashlib.sha256(f"{local}@{domain}".encode()).hexdigest()[:8]
    return f"{logical.vault_namespace(slug)}_{readable}_{digest}"


def check_slug(slug: str) -> None:
    """Refuse slugs that are not [a-z0-9-] before they become a path (`../../etc`, `a;rm -rf /`)."""
    if not isinstance(slug, str) or len(slug) > 40 or not SLUG_RE.fullmatch(slug):
        shown = slug if len(slug) <= 50 else slug[:50] + "..."
        raise InvalidInput(f"{shown!r} is not a tenant slug ([a-z0-9-], at most 40 characters)")


def least_loaded(inv: Inventory, group: str, service: str) -> str | None:
    """The host of ``group`` serving the fewest tenants (ties: by name)."""
    hosts = sorted(name for name, h in inv.hosts.items() if group in h.groups)
    if not hosts:
        return None
    load = {h: 0 for h in hosts}
    for tenant in inv.tenants:
        host = getattr(tenant.placement, service)
        if host in load:
            load[host] += 1
    return min(hosts, key=lambda h: (load[h], h))


def build(inv: Inventory, slug: str, name: str, insee: str, domains: list[str], mailboxes: list[str],
          mail_host: str | None, office_host: str | None, window: str | None) -> dict[str, Any]:
    """The tenant document to write (plain data, validated afterwards)."""
    boxes = []
    for spec in mailboxes:
        local, _, quota = spec.partition(":")
        boxes.append({"local": local, "name": local, "quota": quota or "1G",
                      "password_vault": vault_name(slug, local, domains[0] if domains else "")})
    doc: dict[str, Any] = {
        "slug": slug, "name": name, "insee": insee, "domains": domains, "services": ["mail", "office"],
        "placement": {"mail": mail_host or least_loaded(inv, "mail", "mail"),
                      "office": office_host or least_loaded(inv, "office", "office")},
        "mailboxes": boxes,
        "office": {"wopi_hosts": [f"https://cloud.{domains[0]}"] if domains else []},
    }
    if window:
        doc["maintenance_window"] = window
    return doc


def check(inv: Inventory, doc: dict[str, Any], vault_names: frozenset[str] | None) -> Tenant:
    """Validate ``doc`` as tenants/<slug>.yml within the inventory; InvalidInput with every message."""
    rel = f"tenants/{doc['slug']}.yml"
    tenant, errors = check_doc(Tenant, doc, rel)
    if tenant is not None:
        errors += [f"{rel}: {e}" for e in logical.tenant_rules(tenant, doc["slug"], vault_names)]
        summaries = [(f"tenants/{t.slug}.yml", logical.summary(t)) for t in inv.tenants]
        summaries.append((rel, logical.summary(tenant)))
        groups = {name: h.groups for name, h in inv.hosts.items()}
        errors += logical.cross_rules(summaries, groups, dict(inv.platform.tno_office_extra_wopi_hosts),
                                      inv.platform.tno_mail_spam_thresholds)
    if errors or tenant is None:
        raise InvalidInput(f"tenant {doc['slug']} would make the inventory invalid", details=errors)
    return tenant


def borg_passphrase_var(slug: str) -> str:
    """The tenant's borg passphrase variable (same rule as tnoctl.backup.naming.passphrase_var, a sibling layer)."""
    return logical.PLATFORM_VAULT_PREFIXES[0] + slug.replace("-", "_")


def write(inv: Inventory, doc: dict[str, Any], password_file: Path | None) -> Path:
    """Store mailbox passwords and the borg passphrase in the vault, then write the tenant file; return its path."""
    path = inv.path / "tenants" / f"{doc['slug']}.yml"
    if path.exists():
        raise InvalidInput(f"tenant {doc['slug']!r} already exists ({path})")
    names = {box["password_vault"] for box in doc["mailboxes"]}
    existing = vault.vault_names(inv.path, password_file, [doc["slug"]]) or frozenset()
    if names - existing and password_file is None:
        raise InvalidInput("tenant add needs the vault password to store mailbox passwords "
                           "(--vault-password-file or $TNO_VAULT_PASSWORD_FILE)")
    reused = sorted(names & existing)
    if reused:
        raise InvalidInput(f"tenant {doc['slug']}: vault variable {reused[0]} already exists: refusing to share "
                           "or reuse a password (remove the stale variable from the vault first)",
                           details=[f"{VAULT_REL}: {name}: already defined" for name in reused])
    # The borg passphrase: generated unless it already exists (a repository left by an earlier
    # tenant of the same slug stays readable with it; `backup shred` removes both).
    borg_var = borg_passphrase_var(doc["slug"])
    secrets = sorted(names) + ([] if borg_var in existing else [borg_var])
    if secrets and password_file is None:
        raise InvalidInput("tenant add needs the vault password to store the tenant's secrets "
                           "(--vault-password-file or $TNO_VAULT_PASSWORD_FILE)")
    check(inv, doc, existing | names | {borg_var})
    if secrets:
        vault.add_secrets(inv.path, password_file, {n: vault.new_password() for n in secrets}, tenant=doc["slug"])
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Tenant {doc['name']} (added by tnoctl tenant add; schema: docs/inventory-reference.md).\n"
    vault.atomic_write(path, (header + yamlio.dump(doc)).encode())
    return path
