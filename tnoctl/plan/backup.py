"""Pure planner for `backup` and `restore`: which tenants, on which hosts, with which commands. No I/O.

Backups run per tenant on the tenant's mail host (``tno-backup run SLUG``, the same command the
systemd timer runs). Reads (list, verify, drill) and pruning run on the backup host with the
passphrase from the vault, so they work when the mail host is gone, and prove the vault copy of
the passphrase opens the repository (what a disaster recovery depends on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tnoctl.backup import naming
from tnoctl.errors import InvalidInput
from tnoctl.plan.calls import PlaybookCall

BACKUP_PLAYBOOK = "backup.yml"
SITE_PLAYBOOK = "site.yml"


@dataclass(frozen=True)
class BackupTarget:
    """One tenant's backup: where its mail (and office) live, where its repository lives, its retention."""

    slug: str
    mail_host: str
    backup_host: str
    retention: dict[str, int]
    office_host: str | None = None  # ships coolwsd.xml, the proof key and the proxy config (docs/backups.md)

    @property
    def components(self) -> tuple[str, ...]:
        """What this tenant's backup covers, in run order: mail, then office when the tenant has one."""
        return ("mail", "office") if self.office_host else ("mail",)

    def host_of(self, component: str) -> str:
        """The host that ships ``component`` to the backup host."""
        host = self.mail_host if component == "mail" else self.office_host
        if not host:
            raise InvalidInput(f"tenant {self.slug} has no {component} host")
        return host

    @property
    def repo(self) -> str:
        """Repository path on the backup host."""
        return naming.repo_path(self.slug)


def retention_of(tenant: Any, platform: Any) -> dict[str, int]:
    """Platform retention with the tenant's overrides applied (same rule as the Ansible view)."""
    merged = dict(platform.tno_backup_retention.model_dump())
    merged.update({k: v for k, v in tenant.backup.model_dump().items() if v is not None})
    return merged


def plan_targets(inventory: Any, tenants: list[str] | tuple[str, ...] = ()) -> list[BackupTarget]:
    """Targets for the selected tenants (default: every tenant with mail), sorted by slug."""
    backup_host = inventory.platform.tno_backup_host
    if backup_host not in inventory.hosts:
        raise InvalidInput(f"tno_backup_host '{backup_host}' is not a host of the inventory")
    chosen = [inventory.tenant(s) for s in sorted(set(tenants))] if tenants else list(inventory.tenants)
    out = []
    for tenant in chosen:
        if "mail" not in tenant.services or not tenant.placement.mail:
            if tenants:
                raise InvalidInput(f"tenant {tenant.slug} has no mail service: nothing to back up")
            continue
        retention = retention_of(tenant, inventory.platform)
        office = tenant.placement.office if "office" in tenant.services else None
        out.append(BackupTarget(tenant.slug, tenant.placement.mail, backup_host, retention, office or None))
    return sorted(out, key=lambda t: t.slug)


def setup_call(hosts: list[str] | tuple[str, ...] = ()) -> PlaybookCall:
    """The backup deployment (role tno_backup, three plays); ``hosts`` limits it."""
    return PlaybookCall(playbook=BACKUP_PLAYBOOK, extra_vars={"tno_action": "deploy"}, limit=tuple(sorted(hosts)))


def disaster_calls(new_host: str, backup_host: str) -> list[PlaybookCall]:
    """Deploy a fresh mail host through the normal path, then its backup side (keys on the backup host)."""
    return [
        PlaybookCall(playbook=SITE_PLAYBOOK, extra_vars={"tno_action": "deploy"}, limit=(new_host,)),
        setup_call((new_host, backup_host)),
    ]


def prune_args(target: BackupTarget) -> list[list[str]]:
    """borg commands run on the backup host by ``backup prune``, then ``compact``.

    One pass per kind of archive (naming.archive_glob): scheduled mail and office archives get the
    tenant's retention; tagged snapshots (``pre-upgrade-<op>``) are kept ``--keep-within`` the
    daily horizon (keep_daily days, at least 1) in their own pass, so they never take the daily slot
    of a scheduled archive and live at least as long as a daily archive of the same day.
    """
    keep = [f"--keep-{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items())]
    within = f"--keep-within={max(1, int(target.retention.get('keep_daily', 1)))}d"
    out = []
    for component in target.components:
        out.append(["prune", "--glob-archives", naming.archive_glob(target.slug, component), *keep, "--stats",
                    target.repo])
        out.append(["prune", "--glob-archives", naming.archive_glob(target.slug, component, tagged=True), within,
                    "--stats", target.repo])
    return [*out, ["compact", target.repo]]


def check_args(target: BackupTarget) -> list[list[str]]:
    """borg repository + archive consistency checks (``backup verify``)."""
    return [["check", "--repository-only", target.repo], ["check", "--archives-only", target.repo]]


def info_args(target: BackupTarget) -> list[str]:
    """``borg info --json`` of every archive of the tenant, every kind (``backup list``)."""
    return ["info", "--json", "--glob-archives", f"{target.slug}*", target.repo]


def list_paths_args(target: BackupTarget, archive: str) -> list[str]:
    """``borg list --json-lines`` of one archive's paths (drill: the office files are there)."""
    return ["list", "--json-lines", f"{target.repo}::{archive}"]


def extract_args(target: BackupTarget, archive: str) -> list[str]:
    """``borg extract`` of a whole archive into the current directory (``backup drill``)."""
    return ["extract", f"{target.repo}::{archive}"]
