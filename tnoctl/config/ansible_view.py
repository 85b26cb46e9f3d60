"""What Ansible sees: `tno_tenants` per host and `tno_all_tenants` (docs/architecture.md).

Used by the inventory plugin (plugins/inventory/tno_tenants.py) and by `tnoctl inventory export`
(a static inventory for tools that cannot run the plugin, e.g. AWX). Plain dicts/lists only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tnoctl.config import viewcache
from tnoctl.config.hostsecrets import rspamd_password_var
from tnoctl.config.load import Inventory
from tnoctl.config.mailrules import postmaster
from tnoctl.config.schedule import drill_on_calendar
from tnoctl.config.schema import Tenant, size_bytes


def tenant_view(tenant: Tenant, platform_retention: dict[str, int]) -> dict[str, Any]:
    """One entry of `tno_tenants` (no secret: mailboxes carry the vault variable *name*)."""
    backup = dict(platform_retention)
    backup.update({k: v for k, v in tenant.backup.model_dump().items() if v is not None})
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "insee": tenant.insee,
        "domains": list(tenant.domains),
        "primary_domain": tenant.primary_domain,
        "services": list(tenant.services),
        "pilot": tenant.pilot,
        "placement": {"mail": tenant.placement.mail, "office": tenant.placement.office},
        "mailboxes": [
            {
                "local": box.local,
                "domain": box.domain or tenant.primary_domain,
                "address": f"{box.local}@{box.domain or tenant.primary_domain}",
                "name": box.name,
                "quota": box.quota,
                "quota_bytes": size_bytes(box.quota),
                "password_vault": box.password_vault,
                "send_limit": box.send_limit.model_dump() if box.send_limit else None,
            }
            for box in tenant.mailboxes
        ],
        "mail": {
            "postmaster": postmaster(tenant),
            "aliases": [
                {
                    "local": alias.local,
                    "domain": alias.domain or tenant.primary_domain,
                    "address": f"{alias.local}@{alias.domain or tenant.primary_domain}",
                    "to": list(alias.to),
                    "forward": list(alias.forward),
                }
                for alias in tenant.mail.aliases
            ],
            "spam": tenant.mail.spam.model_dump(),
        },
        "office": {"wopi_hosts": list(tenant.office.wopi_hosts)},
        "backup": backup,
        "drill_on_calendar": drill_on_calendar(tenant.slug, tenant.maintenance_window),
    }


def host_vars(inv: Inventory, only: set[str] | None = None,
              cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """`{host: {"tno_tenants": [...]}}` for every host, or the ``only`` ones (empty list: serves nobody);
    mail hosts also get ``tno_mail_rspamd_password_vault`` (the *name* of their vault secret).

    Only the files of those hosts' tenants are read; with ``cache_dir`` (the validation cache) an
    unchanged file's entry comes from viewcache.py instead of a parse (Inventory.tenant).
    """
    retention = inv.platform.tno_backup_retention.model_dump()
    out: dict[str, dict[str, Any]] = {}
    for name in inv.hosts:
        if only is not None and name not in only:
            continue
        slugs = {row.rel: row.slug for row in inv.rows_on_host(name)}
        views = viewcache.host_views(inv.path, name, list(slugs),
                                     lambda rel, s=slugs: tenant_view(inv.tenant(s[rel]), retention),
                                     retention, cache_dir)
        out[name] = {"tno_tenants": views, **_host_secret_names(name, inv.hosts[name].groups)}
    return out


def _host_secret_names(name: str, groups: set[str]) -> dict[str, str]:
    """Names (never values) of the host's own vault secrets: a mail host's Rspamd controller password."""
    return {"tno_mail_rspamd_password_vault": rspamd_password_var(name)} if "mail" in groups else {}


def all_tenants(inv: Inventory) -> list[dict[str, Any]]:
    """`tno_all_tenants`: cross-host data such as the inter-commune TLS policy map."""
    out = []
    for tenant in inv.rows:  # rows: no tenant file parsed
        mail_host = tenant.placement.mail if "mail" in tenant.services else None
        out.append({
            "slug": tenant.slug,
            "domains": list(tenant.domains),
            "mail_host": mail_host,
            "mail_host_address": inv.hosts[mail_host].address if mail_host in inv.hosts else None,
            "office_host": tenant.placement.office if "office" in tenant.services else None,
        })
    return out
