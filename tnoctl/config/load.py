"""Load an inventory directory: hosts.yml, platform.yml, tenants/*.yml — all errors at once.

Every verb goes through the same cached, parallel check (scan.py: content-addressed cache, every
core) and gets an :class:`Inventory` holding one small row per tenant; a tenant's full model is
parsed from its file only when asked for (``tenant()``, ``tenants_on_host()``, ``tenants``), so a
verb costs what its tenants cost. Raises InvalidInput whose ``details`` hold every `file:field: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tnoctl.config import logical, scan, validate
from tnoctl.config.hosts import Host, load_hosts
from tnoctl.config.schema import Platform, Tenant
from tnoctl.config.vaultnames import VaultNames
from tnoctl.errors import InvalidInput, unknown

PLATFORM_REL = "group_vars/all/platform.yml"


@dataclass(frozen=True)
class TenantRow:
    """What the read verbs list for a tenant, from the validation cache (no file parsed)."""

    rel: str
    slug: str
    name: str
    insee: str
    domains: tuple[str, ...]
    services: tuple[str, ...]
    placement: Any  # .mail / .office, like Tenant.placement
    pilot: bool
    maintenance_window: str
    mailboxes: int

    @property
    def primary_domain(self) -> str:
        """The first domain, like Tenant.primary_domain."""
        return self.domains[0]

    @classmethod
    def of(cls, rel: str, s: dict[str, Any]) -> TenantRow:
        """Build from a cached check summary (logical.summary)."""
        return cls(rel, s["slug"], s["name"], s["insee"], tuple(s["domains"]), tuple(s["services"]),
                   SimpleNamespace(mail=s["placement"]["mail"], office=s["placement"]["office"]),
                   s["pilot"], s["maintenance_window"], s["mailboxes"])


@dataclass
class Inventory:
    """A valid inventory: hosts with groups, platform variables, one row per tenant sorted by slug."""

    path: Path
    hosts: dict[str, Host]
    platform: Platform
    rows: list[TenantRow] = field(default_factory=list)
    _models: dict[str, Tenant] = field(default_factory=dict, repr=False)

    def row(self, slug: str) -> TenantRow:
        """The row of tenant ``slug``; InvalidInput listing the known ones otherwise."""
        found = self._by_slug.get(slug)
        if found is None:
            raise unknown("tenant", slug, (r.slug for r in self.rows))
        return found

    def tenant(self, slug: str) -> Tenant:
        """The full model of tenant ``slug`` (its file parsed on first use); InvalidInput if unknown."""
        row = self.row(slug)
        if "tenants" in self.__dict__:  # every model loaded (or replaced, e.g. by a test): they are the truth
            found = next((t for t in self.__dict__["tenants"] if t.slug == slug), None)
            if found is not None:
                return found
        if slug not in self._models:
            res = validate.check_tenant_file(self.path / row.rel, row.rel, None, keep=True)
            if res.tenant is None:  # changed on disk since it was validated
                raise InvalidInput(f"inventory {self.path} changed while loading: " + "; ".join(res.errors[:3]))
            self._models[slug] = res.tenant
        return self._models[slug]

    @cached_property
    def tenants(self) -> list[Tenant]:
        """Every tenant's full model (parses every file: for verbs that really need them all)."""
        return [self.tenant(r.slug) for r in self.rows]

    def rows_on_host(self, name: str) -> list[TenantRow]:
        """Rows of the tenants a host serves: mail hosts by placement.mail, office/proxy by placement.office."""
        host = self.hosts.get(name)
        if host is None:
            return []
        return [r for r in self.rows
                if ("mail" in host.groups and r.placement.mail == name and "mail" in r.services)
                or ({"office", "proxy"} & host.groups and r.placement.office == name and "office" in r.services)]

    def slugs_on_host(self, name: str) -> list[str]:
        """Slugs of the tenants a host serves (no file parsed)."""
        return [r.slug for r in self.rows_on_host(name)]

    def tenants_on_host(self, name: str) -> list[Tenant]:
        """Full models of the tenants a host serves (only their files are parsed)."""
        return [self.tenant(r.slug) for r in self.rows_on_host(name)]

    @cached_property
    def _by_slug(self) -> dict[str, TenantRow]:
        return {r.slug: r for r in self.rows}


MAX_ERRORS = 200
"""Error lines printed for one inventory (the count in the headline stays exact)."""


def _fail(path: Path, errors: list[str]) -> InvalidInput:
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    shown = validate.cap(errors, MAX_ERRORS, "", "(inventory)")
    return InvalidInput(f"inventory {path} is invalid: {count}", details=shown)


def _common(path: Path):
    """hosts.yml + platform.yml with their errors."""
    if not path.is_dir():
        raise InvalidInput(f"inventory {path}: not a directory")
    hosts, errors = load_hosts(path / "hosts.yml")
    platform, perrs = validate.check_platform(path / PLATFORM_REL, PLATFORM_REL)
    errors += perrs
    if platform is not None and hosts and "backup" not in hosts.get(platform.tno_backup_host, Host("", "")).groups:
        errors.append(f"{PLATFORM_REL}: tno_backup_host: {platform.tno_backup_host!r} is not in group 'backup'")
    return hosts, platform, errors


def _extra_wopi(platform: Platform | None) -> dict[str, list[str]]:
    return dict(platform.tno_office_extra_wopi_hosts) if platform is not None else {}


def _groups(hosts: dict[str, Host]) -> dict[str, set[str]]:
    return {name: host.groups for name, host in hosts.items()}


def _checked(path: Path, vault_password_file: Path | None, cache_dir: Path | None, workers: int | None):
    """The one validation path: (hosts, platform, summaries, vault names, stats); InvalidInput on errors."""
    hosts, platform, errors = _common(path)
    names = VaultNames(path, vault_password_file, cache_dir)
    results, stray, stats = scan.scan(path, names, cache_dir=cache_dir, workers=workers)
    errors += stray
    summaries = []
    for rel, errs, summary in results:
        errors += errs
        if summary is not None:
            summaries.append((rel, summary))
    errors += logical.cross_rules(summaries, _groups(hosts), _extra_wopi(platform),
                                  platform.tno_mail_spam_thresholds if platform is not None else None)
    if errors or platform is None:
        raise _fail(path, errors)
    return hosts, platform, summaries, names, stats


def load_inventory(path: Path, vault_password_file: Path | None = None, cache_dir: Path | None = None,
                   workers: int | None = None) -> Inventory:
    """Validate everything (cached under ``cache_dir``); raise InvalidInput with every message when wrong."""
    hosts, platform, summaries, _names, _stats = _checked(path, vault_password_file, cache_dir, workers)
    rows = sorted((TenantRow.of(rel, s) for rel, s in summaries), key=lambda r: r.slug)
    return Inventory(path, hosts, platform, rows)


@dataclass
class Report:
    """What `inventory validate` found."""

    errors: list[str]
    hosts: int
    tenants: int
    stats: dict[str, int]
    vault_checked: bool


def validate_inventory(path: Path, vault_password_file: Path | None = None, cache_dir: Path | None = None,
                       workers: int | None = None) -> Report:
    """Check the inventory without keeping models; cached and parallel; raise InvalidInput on errors."""
    hosts, _platform, _summaries, names, stats = _checked(path, vault_password_file, cache_dir, workers)
    return Report([], len(hosts), stats["files"], stats, names.digest is not None)
