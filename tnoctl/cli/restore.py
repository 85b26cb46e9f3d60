"""`tnoctl restore`: one mailbox into a dated folder, or a whole tenant onto another mail host."""

from __future__ import annotations

import dataclasses
import sys

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput


@click.command("restore")
@click.option("--tenant", "-t", required=True, help="Tenant slug.")
@click.option("--mailbox", "-m", help="Restore this mailbox (user@domain) into a dated folder.")
@click.option("--to-host", help="Disaster recovery: restore the whole tenant onto this mail host.")
@click.option("--archive", help="Archive name (default: the latest; see `tnoctl backup list`).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def restore(app: AppContext, tenant: str, mailbox: str | None, to_host: str | None, archive: str | None,
            yes: bool) -> int:
    """Restore mail from the tenant's borg repository, never destroying mail that arrived since.

    --mailbox imports the archived mailbox under `Restored-<UTC date>/` (live folders untouched) and
    checks every message against the archive's manifest. --to-host rewrites the tenant's mail
    placement, deploys the host, restores every mailbox, DKIM keys and Sieve scripts, and verifies.
    Holds the tenant lock (a backup of the tenant waits: exit 3).

    \b
    Example:
      tnoctl restore --tenant givors --mailbox dgs@givors.test --yes
      tnoctl restore --tenant givors --to-host mail1 --yes
    """
    from tnoctl.actions import restore as restore_action
    from tnoctl.actions.backup import SUMMARY_COLUMNS, summary_rows
    from tnoctl.cli.backup import backup_env
    from tnoctl.plan.backup import plan_targets, require_mail
    from tnoctl.state import audit, locks

    if bool(mailbox) == bool(to_host):
        raise InvalidInput("give exactly one of --mailbox or --to-host")
    env = backup_env(app)
    (target,) = plan_targets(env.inventory, [tenant])
    require_mail(target)
    if mailbox and mailbox.lower() not in _addresses(env.inventory.tenant(tenant)):
        raise InvalidInput(f"{mailbox} is not a mailbox of tenant {tenant}")
    if to_host and "mail" not in env.inventory.hosts.get(to_host, _NoHost).groups:
        raise InvalidInput(f"--to-host {to_host}: not a host of group mail")
    what = f"mailbox {mailbox}" if mailbox else f"tenant {tenant} onto {to_host}"
    if not yes and not click.confirm(f"Restore {what}?", default=False):
        return int(ExitCode.REFUSED)
    hosts = [to_host or target.mail_host, target.backup_host]
    with audit.operation(app.state_dir, "restore", sys.argv[1:], tenants=[tenant], hosts=hosts) as op, \
            locks.hold(app.state_dir, [tenant], "restore", op.id), env.ssh:
        name = restore_action.resolve_archive(env, target, archive)
        if mailbox:
            outcome = restore_action.restore_mailbox(env, target, mailbox.lower(), name)
        else:
            outcome = _disaster(app, env, target, to_host or "", name, op)
        app.print_table(SUMMARY_COLUMNS, summary_rows([outcome]))
        op.details["restore"] = {"archive": name, "ok": outcome.ok, "detail": outcome.detail}
        if not outcome.ok:
            op.result, op.exit_code = "failed", int(ExitCode.FAILED)
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


class _NoHost:
    groups: tuple[str, ...] = ()


def _addresses(tenant) -> set[str]:
    return {f"{m.local}@{m.domain or tenant.primary_domain}".lower() for m in tenant.mailboxes}


def _disaster(app: AppContext, env, target, to_host: str, archive: str, op):
    """Placement -> deploy (site.yml, backup.yml) -> agent restore -> verify."""
    from tnoctl.actions import restore as restore_action
    from tnoctl.actions.backup import Outcome
    from tnoctl.actions.deploy import RunContext
    from tnoctl.cli.backup import scrubber
    from tnoctl.plan.backup import disaster_calls
    from tnoctl.run.ansible import run_playbook
    from tnoctl.run.progress import RunProgress

    old = restore_action.move_placement(app.inventory, target.slug, to_host)
    op.details["placement"] = {"mail": {"from": old, "to": to_host}}
    app.info(f"{target.slug}: placement.mail {old} -> {to_host} (tenants/{target.slug}.yml)")
    ctx = RunContext(app.inventory, app.state_dir, op.id, app.vault_password_file, app.stderr,
                     scrubber())
    for index, call in enumerate(disaster_calls(to_host, target.backup_host)):
        with RunProgress(app.stderr, list(call.limit), f"restore: {call.playbook}") as progress:  # type: ignore[arg-type]
            result = run_playbook(call, inventory=ctx.inventory, state_dir=ctx.state_dir, run_id=f"{op.id}-{index}",
                                  vault_password_file=ctx.vault_password_file, on_event=progress, redact=ctx.redact)
        op.artifacts = str(result.artifacts_dir)
        if not result.success:
            msgs = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failed_tasks)[:400]
            return Outcome(target.slug, False, f"{call.playbook} failed on {to_host}: {msgs}")
    moved = dataclasses.replace(target, mail_host=to_host)
    return restore_action.restore_tenant(env, moved, archive)
