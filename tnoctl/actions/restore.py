"""`restore --mailbox` and `restore --to-host`: bring mail back without destroying what arrived since.

Mailbox restore: the archive's copy of the mailbox is *imported* (``doveadm import``) under a dated
folder ``Restored-<UTC stamp>/``: live folders are never rewritten, mail delivered since the backup
stays where it is, and running the restore twice cannot lose anything (it only adds a second dated
folder). The result is checked against the archive's manifest (every message present, byte-identical).

Disaster recovery (``--to-host``): the tenant's placement is rewritten in its tenant file, the new host
is deployed through the normal path (site.yml, then backup.yml so it holds the tenant's key and
passphrase), then the host agent restores every mailbox, the DKIM private keys and Sieve scripts,
checks the userdb and verifies the manifest. :func:`run` holds the operation and the tenant lock.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tnoctl.actions.backup import SUMMARY_COLUMNS, TenantResult, last_json, list_archives, summary_rows
from tnoctl.actions.backup_setup import play
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, disaster_calls, plan_targets, require_mail
from tnoctl.state import store as state_store
from tnoctl.state.audit import Operation

_PLACEMENT_BLOCK = re.compile(r"^(placement:\s*\n(?:[ \t]+.*\n)*?[ \t]+mail:[ \t]*)([A-Za-z0-9._-]+)", re.M)
_PLACEMENT_FLOW = re.compile(r"^(placement:\s*\{[^}\n]*\bmail:\s*)([A-Za-z0-9._-]+)", re.M)


@dataclass(frozen=True)
class RestoreRequest:
    """``restore``: exactly one of ``mailbox`` (user@domain) or ``to_host``; ``archive`` default: latest."""

    tenant: str
    mailbox: str | None = None
    to_host: str | None = None
    archive: str | None = None

    @property
    def what(self) -> str:
        """What is restored, for the confirmation question."""
        return f"mailbox {self.mailbox}" if self.mailbox else f"tenant {self.tenant} onto {self.to_host}"


def check(env: Env, request: RestoreRequest) -> BackupTarget:
    """Validate the request against the inventory (InvalidInput naming the option); the tenant's target."""
    if bool(request.mailbox) == bool(request.to_host):
        raise InvalidInput("give exactly one of --mailbox or --to-host")
    (target,) = plan_targets(env.inventory, [request.tenant])
    require_mail(target)  # an office-only tenant has no mailbox to restore
    tenant = env.inventory.tenant(request.tenant)
    addresses = {f"{m.local}@{m.domain or tenant.primary_domain}".lower() for m in tenant.mailboxes}
    if request.mailbox and request.mailbox.lower() not in addresses:
        raise InvalidInput(f"{request.mailbox} is not a mailbox of tenant {request.tenant}")
    host = env.inventory.hosts.get(request.to_host or "")
    if request.to_host and (host is None or "mail" not in host.groups):
        raise InvalidInput(f"--to-host {request.to_host}: not a host of group mail")
    return target


def run(env: Env, request: RestoreRequest) -> Outcome:
    """Restore under the tenant's lock: resolve the archive, then the mailbox or the whole tenant."""
    target = check(env, request)
    hosts = [request.to_host or target.mail_host, target.backup_host]
    params = {"tenant": request.tenant, "mailbox": request.mailbox, "to_host": request.to_host,
              "archive": request.archive}
    with operation(env, "restore", params, tenants=[request.tenant], hosts=hosts) as op:
        name = resolve_archive(env, target, request.archive)
        if request.mailbox:
            result = restore_mailbox(env, target, request.mailbox.lower(), name)
        else:
            result = _disaster(env, op, target, request.to_host or "", name)
        op.details["restore"] = {"archive": name, "ok": result.ok, "detail": result.detail}
        if not result.ok:
            op.fail(reason=result.detail)
        return outcome_of(op, rows=summary_rows([result]), columns=SUMMARY_COLUMNS,
                          data={"archive": name, **dataclasses.asdict(result)})


def _disaster(env: Env, op: Operation, target: BackupTarget, to_host: str, archive: str) -> TenantResult:
    """Placement -> deploy (site.yml, backup.yml) -> agent restore -> verify."""
    old = move_placement(env.inventory_path, target.slug, to_host)
    op.details["placement"] = {"mail": {"from": old, "to": to_host}}
    env.output.info(f"{target.slug}: placement.mail {old} -> {to_host} (tenants/{target.slug}.yml)")
    for index, call in enumerate(disaster_calls(to_host, target.backup_host)):
        failures = play(env, op, call, suffix=str(index), hosts=list(call.limit), title=f"restore: {call.playbook}")
        if failures:
            return TenantResult(target.slug, False, f"{call.playbook} failed on {to_host}: {'; '.join(failures)}"[:500])
    return restore_tenant(env, dataclasses.replace(target, mail_host=to_host), archive)


def set_mail_placement(text: str, host: str) -> str:
    """Rewrite ``placement.mail`` in a tenant file's text, keeping comments and layout. Pure."""
    for pattern in (_PLACEMENT_BLOCK, _PLACEMENT_FLOW):
        new, count = pattern.subn(lambda m: m.group(1) + host, text, count=1)
        if count:
            return new
    raise InvalidInput("tenant file has no placement.mail to rewrite")


def resolve_archive(env: Env, target: BackupTarget, archive: str | None) -> str:
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


def restore_mailbox(env: Env, target: BackupTarget, address: str, archive: str) -> TenantResult:
    """Import one mailbox of ``archive`` into a dated folder on the tenant's mail host, then verify."""
    folder = naming.restore_folder(datetime.fromtimestamp(env.clock(), UTC))
    start = state_store.now()
    result = env.ssh.run(target.mail_host, [naming.AGENT, "restore-mailbox", target.slug, address, archive, folder],
                         timeout=6 * 3600)
    try:
        data = last_json(result.stdout)
    except ValueError:
        return TenantResult(target.slug, False, f"restore failed: {result.stderr.strip()[-300:]}",
                            state_store.now() - start)
    ok = result.ok and bool(data.get("ok"))
    detail = f"{address} <- {archive} into {folder}/: {data.get('checked')} messages, {data.get('missing')} missing"
    _record(env, target.slug, ok, start)
    return TenantResult(target.slug, ok, detail, state_store.now() - start, data)


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


def restore_tenant(env: Env, target: BackupTarget, archive: str) -> TenantResult:
    """Host agent restore of a whole tenant on its (new) mail host, then restart Rspamd (signer)."""
    start = state_store.now()
    result = env.ssh.run(target.mail_host, [naming.AGENT, "restore-tenant", target.slug, archive], timeout=12 * 3600)
    try:
        data = last_json(result.stdout)
    except ValueError:
        return TenantResult(target.slug, False, f"restore failed: {result.stderr.strip()[-300:]}",
                            state_store.now() - start)
    env.ssh.run(target.mail_host, ["systemctl", "restart", "rspamd"])
    ok = result.ok and bool(data.get("ok"))
    detail = (f"{archive} -> {target.mail_host}: {data.get('mailboxes')} mailboxes, {data.get('checked')} messages, "
              f"{data.get('missing')} missing, userdb missing {data.get('userdb_missing')}")
    _record(env, target.slug, ok, start)
    return TenantResult(target.slug, ok, detail, state_store.now() - start, data)


def _record(env: Env, slug: str, ok: bool, start: float) -> None:
    end = state_store.now()
    env.store.record_operation(state_store.OperationRecord(slug, "restore", ok, end, end - start))
