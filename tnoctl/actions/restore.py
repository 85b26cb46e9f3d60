"""`restore --mailbox` and `restore --to-host`: bring mail back without destroying what arrived since.

Mailbox restore: the archive's copy of the mailbox is *imported* (``doveadm import``) under a dated
folder ``Restored-<UTC stamp>/``: live folders are never rewritten, mail delivered since the backup
stays where it is, and running the restore twice cannot lose anything (it only adds a second dated
folder). The result is checked against the archive's manifest (every message present, byte-identical).

Disaster recovery (``--to-host``, tnoctl.actions.restore_host): placement, routing (every other mail
host redeployed), certificates, the tenant's data and its DNS records follow it to the new host.
:func:`run` holds the operation and the tenant lock.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from tnoctl.actions.backup import SUMMARY_COLUMNS, TenantResult, list_archives, summary_rows
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.restore_host import disaster, record, run_agent
from tnoctl.actions.tenant_dns_sync import ClientFactory
from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, plan_targets, require_mail
from tnoctl.state import store as state_store


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


def run(env: Env, request: RestoreRequest, dns_client: ClientFactory | None = None) -> Outcome:
    """Restore under the tenant's lock: resolve the archive, then the mailbox or the whole tenant.

    ``dns_client``: the DNS client factory of the disaster recovery's DNS step (tests fake it).
    """
    started = time.monotonic()
    target = check(env, request)
    hosts = [request.to_host or target.mail_host, target.backup_host]
    tenants = [request.tenant]
    if request.to_host:  # the recovery may redeploy every mail host: lock the tenants they serve, as deploy does
        mail_hosts = sorted(n for n, h in env.inventory.hosts.items() if "mail" in h.groups)
        hosts = sorted({*mail_hosts, target.backup_host})
        tenants = sorted({request.tenant, *(s for h in mail_hosts for s in env.inventory.slugs_on_host(h))})
    params = {"tenant": request.tenant, "mailbox": request.mailbox, "to_host": request.to_host,
              "archive": request.archive}
    with operation(env, "restore", params, tenants=tenants, hosts=hosts) as op:
        name = resolve_archive(env, target, request.archive)
        if request.mailbox:
            result = restore_mailbox(env, target, request.mailbox.lower(), name)
        else:
            result = disaster(env, op, target, request.to_host or "", name, dns_client, started)
        op.details["restore"] = {"archive": name, "ok": result.ok, "detail": result.detail}
        if not result.ok:
            op.fail(reason=result.detail)
        return outcome_of(op, rows=summary_rows([result]), columns=SUMMARY_COLUMNS,
                          data={"archive": name, **dataclasses.asdict(result),
                                **{k: op.details[k] for k in ("serving_after_seconds",) if k in op.details}})


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
    data, ran, error = run_agent(env, target.mail_host or "",
                                 ["restore-mailbox", target.slug, address, archive, folder], 6 * 3600)
    if data is None:
        return TenantResult(target.slug, False, f"restore failed: {error}", state_store.now() - start)
    ok = ran and bool(data.get("ok"))
    detail = f"{address} <- {archive} into {folder}/: {data.get('checked')} messages, {data.get('missing')} missing"
    record(env, target.slug, ok, start)
    return TenantResult(target.slug, ok, detail, state_store.now() - start, data)
