"""Load an inventory directory: hosts.yml, platform.yml, tenants/*.yml — all errors at once.

`load_inventory` returns full models (what verbs and the Ansible view use); `validate_inventory`
only needs the messages and uses the cache and the process pool (35,000 tenants in seconds).
Both raise InvalidInput whose ``details`` hold every `file:field: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tnoctl.config import logical, scan, validate, vault
from tnoctl.config.hosts import Host, load_hosts
from tnoctl.config.schema import Platform, Tenant
from tnoctl.errors import InvalidInput, unknown

PLATFORM_REL = "group_vars/all/platform.yml"


@dataclass
class Inventory:
    """A valid inventory: hosts with groups, platform variables, tenants sorted by slug."""

    path: Path
    hosts: dict[str, Host]
    platform: Platform
    tenants: list[Tenant] = field(default_factory=list)

    def tenant(self, slug: str) -> Tenant:
        """The tenant called ``slug``; InvalidInput listing the known ones otherwise."""
        for tenant in self.tenants:
            if tenant.slug == slug:
                return tenant
        raise unknown("tenant", slug, (t.slug for t in self.tenants))

    def tenants_on_host(self, name: str) -> list[Tenant]:
        """Tenants a host serves: mail hosts by placement.mail, office/proxy hosts by placement.office."""
        host = self.hosts.get(name)
        if host is None:
            return []
        out = []
        for tenant in self.tenants:
            if ("mail" in host.groups and tenant.placement.mail == name and "mail" in tenant.services) or (
                {"office", "proxy"} & host.groups and tenant.placement.office == name
                and "office" in tenant.services
            ):
                out.append(tenant)
        return out


MAX_ERRORS = 200
"""Error lines printed for one inventory (the count in the headline stays exact)."""


def _fail(path: Path, errors: list[str]) -> InvalidInput:
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    shown = validate.cap(errors, MAX_ERRORS, "", "(inventory)")
    return InvalidInput(f"inventory {path} is invalid: {count}", details=shown)


def _common(path: Path, vault_password_file: Path | None):
    """hosts.yml + platform.yml + vault names, with their errors."""
    if not path.is_dir():
        raise InvalidInput(f"inventory {path}: not a directory")
    hosts, errors = load_hosts(path / "hosts.yml")
    platform, perrs = validate.check_platform(path / PLATFORM_REL, PLATFORM_REL)
    errors += perrs
    if platform is not None and hosts and "backup" not in hosts.get(platform.tno_backup_host, Host("", "")).groups:
        errors.append(f"{PLATFORM_REL}: tno_backup_host: {platform.tno_backup_host!r} is not in group 'backup'")
    names = vault.vault_names(path, vault_password_file)
    return hosts, platform, names, errors


def _extra_wopi(platform: Platform | None) -> dict[str, list[str]]:
    return dict(platform.tno_office_extra_wopi_hosts) if platform is not None else {}


def _groups(hosts: dict[str, Host]) -> dict[str, set[str]]:
    return {name: host.groups for name, host in hosts.items()}


def load_inventory(path: Path, vault_password_file: Path | None = None) -> Inventory:
    """Load and validate everything; raise InvalidInput with every message when anything is wrong."""
    hosts, platform, names, errors = _common(path, vault_password_file)
    files, stray = scan.list_tenant_files(path)
    errors += stray
    tenants: list[Tenant] = []
    summaries = []
    for rel, _ in files:
        res = validate.check_tenant_file(path / rel, rel, names, keep=True)
        errors += res.errors
        if res.summary is not None:
            summaries.append((res.rel, res.summary))
        if res.tenant is not None:
            tenants.append(res.tenant)
    errors += logical.cross_rules(summaries, _groups(hosts), _extra_wopi(platform))
    if errors or platform is None:
        raise _fail(path, errors)
    return Inventory(path, hosts, platform, sorted(tenants, key=lambda t: t.slug))


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
    hosts, platform, names, errors = _common(path, vault_password_file)
    results, stray, stats = scan.scan(path, names, cache_dir=cache_dir, workers=workers)
    errors += stray
    summaries = []
    for rel, errs, summary in results:
        errors += errs
        if summary is not None:
            summaries.append((rel, summary))
    errors += logical.cross_rules(summaries, _groups(hosts), _extra_wopi(platform))
    if errors or platform is None:
        raise _fail(path, errors)
    return Report(errors, len(hosts), len(results), stats, names is not None)
