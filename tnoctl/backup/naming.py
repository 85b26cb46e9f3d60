"""Names shared by tnoctl, the tno_backup role and the host agent: repositories, archives, host paths.

Standard library only: the role installs this file next to the agent on the hosts.

Archive names (one repository per tenant holds every kind; borg names may contain dots, slugs may
not, so a dot after the slug is an unambiguous separator and each kind has its own glob):

=====================  ========================================  ========================
kind                   name                                      glob
=====================  ========================================  ========================
mail, scheduled        ``<slug>-<time>``                         ``<slug>-*``
office, scheduled      ``<slug>.office-<time>``                  ``<slug>.office-*``
tagged snapshot        ``<slug>[.office].tag-<tag>-<time>``      ``<slug>[.office].tag-*``
=====================  ========================================  ========================

Retention (``backup prune``) runs one pass per glob, so a tagged snapshot never takes the daily
slot of a scheduled archive and the scheduled retention never counts it (docs/backups.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

REPO_ROOT = "/srv/tno-backup"
QUARANTINE_ROOT = f"{REPO_ROOT}/.rolled-back"
BACKUP_USER = "tnobackup"
BACKUP_USER_HOME = "/var/lib/tnobackup"
STAGING_ROOT = "/var/lib/tno-backup/staging"
BORGMATIC_DIR = "/etc/borgmatic.d"
AGENT = "/usr/local/sbin/tno-backup"
LIB_DIR = "/usr/local/lib/tno-backup"
MANIFEST_SCRIPT = f"{LIB_DIR}/manifest.py"
ROLLBACK_SCRIPT = f"{LIB_DIR}/rollback.py"
HISTORY_SCRIPT = f"{LIB_DIR}/history.py"  # needs borg as a library: Debian's /usr/bin/python3
# archive paths are relative: var/lib/tno-backup/staging/<slug>/...
STAGING_COMPONENTS = len(STAGING_ROOT.strip("/").split("/")) + 1
COMPONENTS = ("mail", "office")
TIME_FORMAT = "{now:%Y-%m-%dT%H:%M:%S.%f}"
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def client_borg_env(slug: str) -> list[str]:
    """``NAME=value`` words for `env` to run borg on a tenant's mail/office host as its backup client does.

    The host's own append-only key, passphrase file and pinned known_hosts (what borgmatic uses:
    roles/tno_backup/templates/borgmatic.yaml.j2). For the benchmarks' raw baselines and for the e2e
    tests that play an intruder holding the host.
    """
    return [f"BORG_PASSCOMMAND=cat /etc/tno-backup/{slug}.passphrase",
            f"BORG_RSH=ssh -i /etc/tno-backup/keys/{slug} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o UserKnownHostsFile=/etc/tno-backup/known_hosts -o StrictHostKeyChecking=yes"]


def passphrase_var(slug: str) -> str:
    """Vault variable holding a tenant's borg passphrase: ``tno_vault_borg_<slug, - as _>``."""
    return "tno_vault_borg_" + slug.replace("-", "_")


def repo_path(slug: str) -> str:
    """The tenant's repository path on the backup host."""
    return f"{REPO_ROOT}/{slug}"


def unit_key(slug: str, component: str = "mail") -> str:
    """Host-side name of one (tenant, component) backup: ``givors`` or ``givors.office``.

    It names the agent config, SSH key, borgmatic config, lock, state file and timer instance.
    """
    if component not in COMPONENTS:
        raise ValueError(f"unknown backup component {component!r}")
    return slug if component == "mail" else f"{slug}.{component}"


def borgmatic_config(slug: str, component: str = "mail") -> str:
    """The borgmatic configuration of one (tenant, component) on its host."""
    return f"{BORGMATIC_DIR}/{unit_key(slug, component)}.yaml"


def check_tag(tag: str) -> str:
    """A snapshot tag: letters, digits, ``-`` and ``_``, at most 64 (it becomes part of an archive name)."""
    if not _TAG.match(tag):
        raise ValueError(f"invalid backup tag {tag!r}: use [A-Za-z0-9_-], at most 64 characters")
    return tag


def archive_base(slug: str, component: str = "mail", tag: str | None = None) -> str:
    """Archive name without its time: ``givors``, ``givors.office``, ``givors.tag-pre-upgrade-42``."""
    base = unit_key(slug, component)
    return f"{base}.tag-{check_tag(tag)}" if tag else base


def archive_name_format(slug: str, component: str = "mail", tag: str | None = None) -> str:
    """borgmatic ``archive_name_format`` of a run (borg expands ``{now}``)."""
    return f"{archive_base(slug, component, tag)}-{TIME_FORMAT}"


def archive_glob(slug: str, component: str = "mail", tagged: bool = False) -> str:
    """borg ``--glob-archives`` pattern of one kind of archive (see the module table)."""
    return f"{unit_key(slug, component)}.tag-*" if tagged else f"{unit_key(slug, component)}-*"


def parse_archive(slug: str, name: str) -> tuple[str, str | None] | None:
    """(component, tag or None) of one of the tenant's archive names; None for a foreign name."""
    for component in COMPONENTS:
        base = unit_key(slug, component)
        if name.startswith(base + "-") and name[len(base) + 1:][:1].isdigit():
            return component, None
        if name.startswith(base + ".tag-"):
            rest = name[len(base) + 5:]
            match = re.match(r"^(.+)-(\d{4}-\d\d-\d\dT[\d:.]+)$", rest)
            return component, (match.group(1) if match else rest)
    return None


def archive_path(slug: str, *parts: str) -> str:
    """A path inside the tenant's mail archives, e.g. ``archive_path(s, "mail", "a.test", "bob")``."""
    return "/".join([STAGING_ROOT.strip("/"), slug, *parts])


def restore_folder(moment: datetime | None = None) -> str:
    """Parent folder a mailbox restore imports into: ``Restored-20261129-153000`` (UTC, no dots)."""
    return "Restored-" + (moment or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
