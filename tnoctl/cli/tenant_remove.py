"""`tnoctl tenant remove SLUG`: offboarding — final backup, Maildir export, removal from the hosts.

Attached to the `tenant` group by the lead (tnoctl/cli/tenant.py). The borg repository is kept
for the retention period, then destroyed by crypto-shredding (`tnoctl backup shred`, docs/backups.md).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, OperationFailed


@click.command("remove")
@click.argument("slug")
@click.option("--export-dir", type=click.Path(path_type=Path), default=None,
              help="Where the Maildir tarball goes (default: <state dir>/exports).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def remove(app: AppContext, slug: str, export_dir: Path | None, yes: bool) -> int:
    """Offboard a commune: final backup, Maildir export tarball (if it has mail), removal from its hosts.

    The tenant file moves to <state dir>/offboarded/; its repository stays until the retention
    period ends, then `tnoctl backup shred SLUG` destroys it (crypto-shredding).

    \b
    Example:
      tnoctl tenant remove corbas --yes
    """
    from tnoctl.actions.backup import run_one
    from tnoctl.backup.remote import fetch_to_file
    from tnoctl.cli.backup import backup_env
    from tnoctl.plan.backup import plan_targets, removal_steps
    from tnoctl.state import audit, locks

    env = backup_env(app)
    tenant = env.inventory.tenant(slug)
    (target,) = plan_targets(env.inventory, [slug])
    steps = removal_steps(target, tenant.domains)
    if not yes and not click.confirm(f"Remove tenant {slug} from {', '.join(target.hosts)}?", default=False):
        return int(ExitCode.REFUSED)
    out_dir = export_dir or app.state_dir / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tarball = out_dir / f"{slug}-maildir-{stamp}.tar.gz"
    hosts = list(target.hosts)
    with audit.operation(app.state_dir, "tenant remove", sys.argv[1:], tenants=[slug], hosts=hosts) as op, \
            locks.hold(app.state_dir, [slug], "tenant remove", op.id), env.ssh:
        final = run_one(env, target)
        if not final.ok:
            raise OperationFailed(f"{slug}: final backup failed, nothing removed: {final.detail}")
        digest = ""
        if target.mail_host:  # an office-only tenant has no Maildir to export
            rc = fetch_to_file(env.ssh, target.mail_host,
                               ["tar", "-C", "/srv/vmail", "-czf", "-", *sorted(tenant.domains)], str(tarball))
            if rc != 0:
                raise OperationFailed(f"{slug}: Maildir export failed (tar rc {rc}), nothing removed")
            digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        for step in steps:
            env.ssh.run(step.host, ["systemctl", "disable", "--now", step.timer])
            removed = env.ssh.run(step.host, ["rm", "-rf", "--one-file-system", *step.paths])
            if not removed.ok:
                raise OperationFailed(f"{slug}: removal failed on {step.host}: {removed.stderr.strip()[:200]}")
        offboarded = app.state_dir / "offboarded"
        offboarded.mkdir(parents=True, exist_ok=True)
        shutil.move(str(app.inventory / "tenants" / f"{slug}.yml"), offboarded / f"{slug}.yml")
        months = target.retention.get("keep_monthly", 6)
        shred_after = (datetime.now(UTC) + timedelta(days=31 * months)).date().isoformat()
        export = str(tarball) if digest else ""
        op.details.update({"export": export, "export_sha256": digest, "shred_after": shred_after,
                           "final_archive": final.detail})
        app.print_table(["tenant", "final archive", "export", "sha256", "shred after"],
                        [[slug, final.detail, export or "(no mail)", digest[:16], shred_after]])
        app.info("run `tnoctl deploy` to drop the tenant from the remaining configuration (postfix maps, userdb)")
    return int(ExitCode.OK)
