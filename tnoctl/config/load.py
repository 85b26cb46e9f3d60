"""Load an inventory directory: hosts.yml, platform.yml, tenants/*.yml — all errors at once.

Every verb goes through the same cached, parallel check (scan.py: content-addressed cache, every
core) and gets an :class:`Inventory` holding one small row per tenant; a tenant's full model is
parsed from its file only when asked for (``tenant()``, ``tenants_on_host()``, ``tenants``), so a
verb costs what its tenants cost. Raises InvalidInput whose ``details`` hold every `file:field: message`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from tnoctl.config import gcpause, index, logical, scan, validate, vaultsplit
from tnoctl.config.hosts import Host, load_hosts
from tnoctl.config.schema import Platform, Tenant
from tnoctl.config.vaultnames import VaultNames
from tnoctl.errors import InvalidInput, unknown

PLATFORM_REL = "group_vars/all/platform.yml"
_new = tuple.__new__


class RowPlacement(NamedTuple):
    """``.mail`` / ``.office`` of a row, like Tenant.placement."""

    mail: str | None
    office: str | None


class TenantRow(NamedTuple):
    """What the read verbs, planners and probes need of a tenant, from the index (no file parsed)."""

    rel: str
    slug: str
    name: str
    insee: str
    domains: tuple[str, ...]
    services: tuple[str, ...]
    placement: RowPlacement
    pilot: bool
    maintenance_window: str
    mailboxes: int
    backup: dict[str, int]
    """Retention overrides set in the file (keys absent when not overridden)."""
    canary: tuple[str, str] | None
    """(address, vault variable) of the canary mailbox the probes log in with, if any."""
    dns_zone: str = "platform"
    """``dns.zone`` of the tenant file: ``platform`` (tno_dns_server serves it) or ``external``."""

    @property
    def primary_domain(self) -> str:
        """The first domain, like Tenant.primary_domain."""
        return self.domains[0]

    @classmethod
    def of(cls, rec: index.Record) -> TenantRow:
        """Build from an index record (index.record).

        ``tuple.__new__`` instead of the generated ``__new__``: 35,000 rows per warm `tenant list`.
        """
        rel, slug, name, insee, domains, services, mail, office, pilot, window, boxes, backup, canary, zone = rec
        return _new(cls, (rel, slug, name, insee, tuple(domains), tuple(services), _new(RowPlacement, (mail, office)),
                          pilot, window, boxes, backup, tuple(canary) if canary is not None else None, zone))



class RowTable:
    """Every tenant's index record, sorted by slug; rows are built only for the tenants asked for.

    From a full validation it holds the records; from a warm index (index.py) the verified body,
    decoded on first need (`tenant show` decodes a few lines only). A malformed body falls back to
    ``rebuild`` (the full validation).
    """

    def __init__(self, records: list[index.Record] | None = None, body: bytes | None = None,
                 rels: list[str] | None = None, rebuild: Callable[[], list[index.Record]] | None = None) -> None:
        if records is not None:
            self.__dict__["records"] = records
        self._body, self._rels, self._rebuild = body, rels or [], rebuild

    @cached_property
    def records(self) -> list[index.Record]:
        """Every record, sorted by slug."""
        with gcpause.paused():
            found = index.parse(self._body or b"", self._rels)
        if found is None and self._rebuild is not None:
            found = self._rebuild()
        return found or []

    @cached_property
    def _position(self) -> dict[str, int]:
        return {rec[1]: i for i, rec in enumerate(self.records)}

    def get(self, slug: str) -> TenantRow | None:
        """The row of ``slug`` (one record decoded), or None."""
        if "records" not in self.__dict__ and self._body is not None:
            found = index.find(self._body.split(b"\n") if self._body else [], slug)
            if found is not False:
                return None if found is None else TenantRow.of(found)  # type: ignore[arg-type]
        i = self._position.get(slug)
        return None if i is None else TenantRow.of(self.records[i])

    def slugs(self) -> list[str]:
        """Every slug, sorted."""
        return [rec[1] for rec in self.records]

    def all(self) -> list[TenantRow]:
        """Every row, sorted by slug."""
        records = self.records
        with gcpause.paused():
            return [TenantRow.of(rec) for rec in records]


@dataclass
class Inventory:
    """A valid inventory: hosts with groups, platform variables, the tenant index (rows sorted by slug)."""

    path: Path
    hosts: dict[str, Host]
    platform: Platform
    table: RowTable = field(default_factory=lambda: RowTable([]))
    _models: dict[str, Tenant] = field(default_factory=dict, repr=False)

    @cached_property
    def rows(self) -> list[TenantRow]:
        """One row per tenant, sorted by slug (no file parsed)."""
        return self.table.all()

    def row(self, slug: str) -> TenantRow:
        """The row of tenant ``slug``; InvalidInput listing the known ones otherwise."""
        found = self.table.get(slug)
        if found is None:
            raise unknown("tenant", slug, self.table.slugs())
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
        mail = "mail" in host.groups
        office = bool({"office", "proxy"} & host.groups)
        return [TenantRow.of(rec) for rec in self.table.records
                if (mail and rec[6] == name and "mail" in rec[5]) or (office and rec[7] == name and "office" in rec[5])]

    def slugs_on_host(self, name: str) -> list[str]:
        """Slugs of the tenants a host serves (no file parsed)."""
        return [r.slug for r in self.rows_on_host(name)]

    def tenants_on_host(self, name: str) -> list[Tenant]:
        """Full models of the tenants a host serves (only their files are parsed)."""
        return [self.tenant(r.slug) for r in self.rows_on_host(name)]


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


def _spam(platform: Platform | None) -> dict[str, Any] | None:
    """The platform's spam thresholds as JSON (an input of the cross-tenant mail rules)."""
    return platform.tno_mail_spam_thresholds.model_dump() if platform is not None else None


def _extra_wopi(platform: Platform | None) -> dict[str, list[str]]:
    return dict(platform.tno_office_extra_wopi_hosts) if platform is not None else {}


def _tls_mode(platform: Platform | None) -> str | None:
    """The platform's TLS mode (an input of the external-zone rule)."""
    return platform.tno_tls_mode if platform is not None else None


def _groups(hosts: dict[str, Host]) -> dict[str, set[str]]:
    return {name: host.groups for name, host in hosts.items()}


def _checked(path: Path, vault_password_file: Path | None, cache_dir: Path | None, workers: int | None):
    """The one validation path: (hosts, platform, row table, vault names, stats); InvalidInput on errors.

    A warm run whose inventory matches the validated index (index.py) reads the index only; any
    other run checks every file (cached per file by scan.py) and, when all is valid, rewrites it.
    """
    hosts, platform, errors = _common(path)
    files, stray = scan.list_tenant_files(path)
    vault_listing = vaultsplit.scan_dir(path)
    names = VaultNames(path, vault_password_file, cache_dir, vault_listing.stats)
    layout = vaultsplit.layout_errors(path, {rel[len("tenants/"):-len(".yml")] for rel, _ in files}, vault_listing)
    if layout:  # before any tenant vault file is read: stray or foreign files are named, not decrypted
        raise _fail(path, errors + layout)
    index_path = index_key = None
    if cache_dir is not None and not errors and not stray and platform is not None:
        listing, newest = index.listing_digest(files)
        index_key = index.key(path, scan.fingerprint(names.digest), _groups(hosts), _extra_wopi(platform), listing,
                              _spam(platform), _tls_mode(platform))
        index_path = cache_dir / index.NAME
        body = index.load(index_path, index_key, len(files), newest)
        if body is not None:
            n = len(files)

            def rebuild() -> list[index.Record]:
                return _full(path, names, cache_dir, workers, (files, stray), hosts, platform, errors,
                             index_path, index_key)[0].records

            table = RowTable(body=body, rels=[rel for rel, _ in files], rebuild=rebuild)
            return hosts, platform, table, names, {"files": n, "parsed": 0, "cached": n, "hashed": 0}
    table, stats = _full(path, names, cache_dir, workers, (files, stray), hosts, platform, errors, index_path,
                         index_key)
    return hosts, platform, table, names, stats


def _full(path: Path, names: VaultNames, cache_dir: Path | None, workers: int | None, listing: Any,
          hosts: dict[str, Host], platform: Platform | None, errors: list[str], index_path: Path | None,
          index_key: str | None) -> tuple[RowTable, dict[str, int]]:
    """Check every tenant file (scan.py's per-file cache) and the cross-tenant rules; write the index if valid."""
    errors = list(errors)
    results, stats = scan.scan(path, names, cache_dir=cache_dir, workers=workers, listing=listing)
    errors += listing[1]
    summaries = []
    for rel, errs, summary in results:
        errors += errs
        if summary is not None:
            summaries.append((rel, summary))
    errors += logical.cross_rules(summaries, _groups(hosts), _extra_wopi(platform),
                                  platform.tno_mail_spam_thresholds if platform is not None else None,
                                  _tls_mode(platform))
    if errors or platform is None:
        raise _fail(path, errors)
    records = sorted((index.record(rel, s) for rel, s in summaries), key=lambda rec: rec[1])
    if index_path is not None and index_key is not None:
        index.save(index_path, index_key, records)
    return RowTable(records), stats


def load_inventory(path: Path, vault_password_file: Path | None = None, cache_dir: Path | None = None,
                   workers: int | None = None) -> Inventory:
    """Validate everything (cached under ``cache_dir``); raise InvalidInput with every message when wrong."""
    hosts, platform, table, _names, _stats = _checked(path, vault_password_file, cache_dir, workers)
    return Inventory(path, hosts, platform, table)


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
    hosts, _platform, _table, names, stats = _checked(path, vault_password_file, cache_dir, workers)
    return Report([], len(hosts), stats["files"], stats, names.digest is not None)
