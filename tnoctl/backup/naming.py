"""Names shared by tnoctl and the tno_backup role: repositories, vault variables, host paths."""

from __future__ import annotations

from datetime import UTC, datetime

REPO_ROOT = "/srv/tno-backup"
BACKUP_USER = "tnobackup"
STAGING_ROOT = "/var/lib/tno-backup/staging"
BORGMATIC_DIR = "/etc/borgmatic.d"
AGENT = "/usr/local/sbin/tno-backup"
MANIFEST_SCRIPT = "/usr/local/lib/tno-backup/manifest.py"
# archive paths are relative: var/lib/tno-backup/staging/<slug>/...
STAGING_COMPONENTS = len(STAGING_ROOT.strip("/").split("/")) + 1


def passphrase_var(slug: str) -> str:
    """Vault variable holding a tenant's borg passphrase: ``tno_vault_borg_<slug, - as _>``."""
    return "tno_vault_borg_" + slug.replace("-", "_")


def repo_path(slug: str) -> str:
    """The tenant's repository path on the backup host."""
    return f"{REPO_ROOT}/{slug}"


def borgmatic_config(slug: str) -> str:
    """The tenant's borgmatic configuration on its mail host."""
    return f"{BORGMATIC_DIR}/{slug}.yaml"


def archive_path(slug: str, *parts: str) -> str:
    """A path inside the tenant's archives, e.g. ``archive_path(s, "mail", "a.test", "bob")``."""
    return "/".join([STAGING_ROOT.strip("/"), slug, *parts])


def restore_folder(moment: datetime | None = None) -> str:
    """Parent folder a mailbox restore imports into: ``Restored-20261129-153000`` (UTC, no dots)."""
    return "Restored-" + (moment or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
