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
from tnoctl.run.ansible import PlaybookCall

BACKUP_PLAYBOOK = "backup.yml"
SITE_PLAYBOOK = "site.yml"


@dataclass(frozen=True)
class BackupTarget:
    """One tenant's backup: where its mail lives, where its repository lives, its retention."""

    slug: str
    mail_host: str
    backup_host: str
    retention: dict[str, int]

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
        out.append(BackupTarget(tenant.slug, tenant.placement.mail, backup_host, retention))
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
    """borg commands run on the backup host by ``backup prune``: prune to the retention, then compact."""
    keep = [f"--keep-{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items())]
    return [
        ["prune", "--glob-archives", f"{target.slug}-*", *keep, "--stats", target.repo],
        ["compact", target.repo],
    ]


def check_args(target: BackupTarget) -> list[list[str]]:
    """borg repository + archive consistency checks (``backup verify``)."""
    return [["check", "--repository-only", target.repo], ["check", "--archives-only", target.repo]]


def info_args(target: BackupTarget) -> list[str]:
    """``borg info --json`` of every archive of the tenant (``backup list``)."""
    return ["info", "--json", "--glob-archives", f"{target.slug}-*", target.repo]


def extract_args(target: BackupTarget, archive: str) -> list[str]:
    """``borg extract`` of a whole archive into the current directory (``backup drill``)."""
    return ["extract", f"{target.repo}::{archive}"]
