"""`tenant remove SLUG`: offboarding — final backup, Maildir export, removal from the tenant's hosts.

Order matters, and each step must succeed before the next one destroys anything: a final backup of
every component (nothing removed if it fails), the Maildir export tarball fetched to the controller
when the tenant has mail (nothing removed if it fails), then on each of its hosts
(plan.backup.removal_steps) its backup timer and backup unit files, and on the mail host its
Maildirs, DKIM keys and staging tree, are removed; its tenant file moves to ``<state dir>/offboarded/``. The borg
repository is kept for the retention period, then destroyed by ``tnoctl backup shred`` (docs/backups.md).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tnoctl.actions.backup import run_one
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.errors import OperationFailed
from tnoctl.plan.backup import BackupTarget, plan_targets, removal_steps

COLUMNS = ["tenant", "final archive", "export", "sha256", "shred after"]


@dataclass(frozen=True)
class TenantRemoveRequest:
    """``tenant remove``: the slug, and where the Maildir tarball goes (default: <state dir>/exports)."""

    slug: str
    export_dir: Path | None = None


def check(env: Env, request: TenantRemoveRequest) -> BackupTarget:
    """The tenant exists and has a placed service (InvalidInput otherwise); its backup target. Before asking."""
    env.inventory.tenant(request.slug)
    (target,) = plan_targets(env.inventory, [request.slug])
    return target


def export_command(domains: list[str]) -> list[str]:
    """The tarball of the tenant's Maildirs, streamed to stdout on the mail host."""
    return ["tar", "-C", "/srv/vmail", "-czf", "-", *sorted(domains)]


def run(env: Env, request: TenantRemoveRequest) -> Outcome:
    """Offboard the tenant under its lock (see the module docstring)."""
    slug = request.slug
    target = check(env, request)
    tenant = env.inventory.tenant(slug)
    out_dir = request.export_dir or env.state_dir / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(env.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
    tarball = out_dir / f"{slug}-maildir-{stamp}.tar.gz"
    params = {"slug": slug, "export_dir": str(request.export_dir) if request.export_dir else None}
    with operation(env, "tenant remove", params, tenants=[slug], hosts=list(target.hosts)) as op:
        final = run_one(env, target)
        if not final.ok:
            raise OperationFailed(f"{slug}: final backup failed, nothing removed: {final.detail}")
        digest = ""
        if target.mail_host:  # an office-only tenant has no Maildir to export
            rc = env.ssh.fetch_to_file(target.mail_host, export_command(list(tenant.domains)), str(tarball))
            if rc != 0:
                raise OperationFailed(f"{slug}: Maildir export failed (tar rc {rc}), nothing removed")
            digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        for step in removal_steps(target, list(tenant.domains)):
            env.ssh.run(step.host, ["systemctl", "disable", "--now", step.timer])
            removed = env.ssh.run(step.host, ["rm", "-rf", "--one-file-system", *step.paths])
            if not removed.ok:
                raise OperationFailed(f"{slug}: removal failed on {step.host}: {removed.stderr.strip()[:200]}")
        offboarded = env.state_dir / "offboarded"
        offboarded.mkdir(parents=True, exist_ok=True)
        shutil.move(str(env.inventory_path / "tenants" / f"{slug}.yml"), offboarded / f"{slug}.yml")
        months = target.retention.get("keep_monthly", 6)
        shred_after = (datetime.fromtimestamp(env.clock(), UTC) + timedelta(days=31 * months)).date().isoformat()
        export = str(tarball) if digest else ""
        details = {"export": export, "export_sha256": digest, "shred_after": shred_after,
                   "final_archive": final.detail}
        op.details.update(details)
        return outcome_of(op, rows=[[slug, final.detail, export or "(no mail)", digest[:16], shred_after]],
                          columns=COLUMNS,
                          data={"tenant": slug, **details},
                          message="run `tnoctl deploy` to drop the tenant from the remaining configuration "
                                  "(postfix maps, userdb)")
