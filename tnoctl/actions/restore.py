"""`restore --mailbox` and `restore --to-host`: bring mail back without destroying what arrived since.

Mailbox restore: the archive's copy of the mailbox is *imported* (``doveadm import``) under a dated
folder ``Restored-<UTC stamp>/``: live folders are never rewritten, mail delivered since the backup
stays where it is, and running the restore twice cannot lose anything (it only adds a second dated
folder). The result is checked against the archive's manifest (every message present, byte-identical).

Disaster recovery (``--to-host``): the tenant's placement is rewritten in its tenant file, the new host
is deployed through the normal path (site.yml, then backup.yml so it holds the tenant's key and
passphrase), then the host agent restores every mailbox, the DKIM private keys and Sieve scripts,
checks the userdb and verifies the manifest. The caller holds the audit operation and the tenant lock.
"""

from __future__ import annotations

import re
from pathlib import Path

from tnoctl.actions.backup import BackupEnv, Outcome, last_json, list_archives
from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget
from tnoctl.state import store as state_store

_PLACEMENT_BLOCK = re.compile(r"^(placement:\s*\n(?:[ \t]+.*\n)*?[ \t]+mail:[ \t]*)([A-Za-z0-9._-]+)", re.M)
_PLACEMENT_FLOW = re.compile(r"^(placement:\s*\{[^}\n]*\bmail:\s*)([A-Za-z0-9._-]+)", re.M)


def set_mail_placement(text: str, host: str) -> str:
    """Rewrite ``placement.mail`` in a tenant file's text, keeping comments and layout. Pure."""
    for pattern in (_PLACEMENT_BLOCK, _PLACEMENT_FLOW):
        new, count = pattern.subn(lambda m: m.group(1) + host, text, count=1)
        if count:
            return new
    raise InvalidInput("tenant file has no placement.mail to rewrite")


def resolve_archive(env: BackupEnv, target: BackupTarget, archive: str | None) -> str:
    """The mail archive to restore: the named one (must exist) or the latest (scheduled or tagged)."""
    archives = borg.of_component(list_archives(env, target), target.slug, "mail")
    if archive is None:
        latest = borg.latest(archives)
        if latest is None:
            raise OperationFailed(f"{target.slug}: no archive in the repository")
        return latest.name
    if archive not in {a.name for a in archives}:
        raise InvalidInput(f"{target.slug}: no mail archive named {archive!r} (see tnoctl backup list)")
    return archive


def restore_mailbox(env: BackupEnv, target: BackupTarget, address: str, archive: str) -> Outcome:
    """Import one mailbox of ``archive`` into a dated folder on the tenant's mail host, then verify."""
    folder = naming.restore_folder()
    start = state_store.now()
    result = env.ssh.run(target.mail_host, [naming.AGENT, "restore-mailbox", target.slug, address, archive, folder],
                         timeout=6 * 3600)
    try:
        data = last_json(result.stdout)
    except ValueError:
        return Outcome(target.slug, False, f"restore failed: {result.stderr.strip()[-300:]}", state_store.now() - start)
    ok = result.ok and bool(data.get("ok"))
    detail = f"{address} <- {archive} into {folder}/: {data.get('checked')} messages, {data.get('missing')} missing"
    _record(env, target.slug, ok, start)
    return Outcome(target.slug, ok, detail, state_store.now() - start, data)


def move_placement(inventory_path: Path, slug: str, host: str) -> str:
    """Point the tenant's mail placement at ``host`` in ``tenants/<slug>.yml``; return the old host."""
    from tnoctl.config.vault import atomic_write

    path = inventory_path / "tenants" / f"{slug}.yml"
    text = path.read_text()
    old = _current_mail(text)
    atomic_write(path, set_mail_placement(text, host).encode(), 0o644)
    return old


def _current_mail(text: str) -> str:
    for pattern in (_PLACEMENT_BLOCK, _PLACEMENT_FLOW):
        match = pattern.search(text)
        if match:
            return match.group(2)
    return ""


def restore_tenant(env: BackupEnv, target: BackupTarget, archive: str) -> Outcome:
    """Host agent restore of a whole tenant on its (new) mail host, then restart OpenDKIM."""
    start = state_store.now()
    result = env.ssh.run(target.mail_host, [naming.AGENT, "restore-tenant", target.slug, archive], timeout=12 * 3600)
    try:
        data = last_json(result.stdout)
    except ValueError:
        return Outcome(target.slug, False, f"restore failed: {result.stderr.strip()[-300:]}", state_store.now() - start)
    env.ssh.run(target.mail_host, ["systemctl", "restart", "opendkim"])
    ok = result.ok and bool(data.get("ok"))
    detail = (f"{archive} -> {target.mail_host}: {data.get('mailboxes')} mailboxes, {data.get('checked')} messages, "
              f"{data.get('missing')} missing, userdb missing {data.get('userdb_missing')}")
    _record(env, target.slug, ok, start)
    return Outcome(target.slug, ok, detail, state_store.now() - start, data)


def _record(env: BackupEnv, slug: str, ok: bool, start: float) -> None:
    end = state_store.now()
    env.store.record_operation(state_store.OperationRecord(slug, "restore", ok, end, end - start))
