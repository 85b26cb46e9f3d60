"""`tenant remove SLUG`: offboarding — final backup, Maildir export, removal from every host, crypto-shredding.

Order matters, and each step must succeed before the next one destroys anything:

1. a final backup of every component (nothing removed if it fails) and the Maildir export tarball
   fetched to the controller when the tenant has mail (nothing removed if it fails): the tarball is
   what is kept of the tenant;
2. on each of its hosts (plan.backup.removal_steps) its backup timer and backup unit files (key,
   passphrase, state, staging), and on the mail host its Maildirs and DKIM keys;
3. its tenant file moves to ``<state dir>/offboarded/`` and its hosts are redeployed, then the backup
   side (plan.backup.offboard_calls): postfix maps, userdb, DKIM tables, coolwsd.xml alias group,
   proxy vhosts and the backup host's authorized_keys lines are regenerated without it;
4. crypto-shredding on the backup host: the repository id is read, the repokey (``config``) is
   overwritten with ``shred``, then the repository and its quarantine are removed, and every host's
   borg cache and security records of that repository are dropped. The passphrase alone opens
   nothing any more; delete ``tno_vault_borg_<slug>`` (and the mailbox passwords) from the vault. With
   the split vault layout the tenant's `vault/<slug>.yml` moves to ``<state dir>/offboarded/`` in step 3
   (a vault file without its tenant is refused by validation).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tnoctl.actions.backup import run_one
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.backup import naming
from tnoctl.config import vaultsplit
from tnoctl.errors import OperationFailed
from tnoctl.plan.backup import (
    BackupTarget,
    borg_state_dirs,
    offboard_calls,
    plan_targets,
    removal_steps,
    repo_id_command,
    shred_commands,
)

COLUMNS = ["tenant", "final archive", "export", "sha256", "repository"]


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
    # the redeploy rewrites configuration shared with the other tenants of its hosts: hold their locks too
    mail_hosts = sorted(n for n, h in env.inventory.hosts.items() if "mail" in h.groups) if target.mail_host else []
    redeployed = {*target.hosts, *mail_hosts}
    neighbours = sorted({t.slug for h in redeployed for t in env.inventory.tenants_on_host(h)} - {slug})
    hosts = sorted({*target.hosts, target.backup_host})
    with operation(env, "tenant remove", params, tenants=[slug, *neighbours], hosts=hosts) as op:
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
            env.ssh.run(step.host, ["systemctl", "disable", "--now", step.timer, step.drill_timer])
            # rc 1 when not failed: fine
            env.ssh.run(step.host, ["systemctl", "reset-failed", step.service, step.drill_service])
            removed = env.ssh.run(step.host, ["rm", "-rf", "--one-file-system", *step.paths])
            if not removed.ok:
                raise OperationFailed(f"{slug}: removal failed on {step.host}: {removed.stderr.strip()[:200]}")
            env.ssh.run(step.host, ["systemctl", "daemon-reload"])  # forget the deleted drill timer file
        offboarded = env.state_dir / "offboarded"
        offboarded.mkdir(parents=True, exist_ok=True)
        shutil.move(str(env.inventory_path / "tenants" / f"{slug}.yml"), offboarded / f"{slug}.yml")
        secrets_moved = _offboard_vault_file(env, slug, offboarded)
        env.reload_inventory()
        _redeploy(env, slug, target, mail_hosts, op.id)
        shredded = shred_repository(env, target)
        export = str(tarball) if digest else ""
        details = {"export": export, "export_sha256": digest, "repository": shredded,
                   "final_archive": final.detail}
        op.details.update(details)
        return outcome_of(op, rows=[[slug, final.detail, export or "(no mail)", digest[:16], shredded]],
                          columns=COLUMNS,
                          data={"tenant": slug, **details},
                          message=(f"the tenant's vault file moved to {secrets_moved}: delete it once the "
                                   "export is safe" if secrets_moved else
                                   f"now delete {naming.passphrase_var(slug)} and the tenant's mailbox passwords "
                                   "from the vault"))


def _offboard_vault_file(env: Env, slug: str, offboarded: Path) -> Path | None:
    """Move `vault/<slug>.yml` (split layout) next to the offboarded tenant file; its path, or None.

    A vault file without its tenant is refused by validation, and the secrets open nothing once the
    repository is shredded; kept (encrypted, 0600) in the state dir like the tenant file.
    """
    source = env.inventory_path / vaultsplit.rel(slug)
    if not source.is_file():
        return None
    dest = offboarded / f"{slug}.vault.yml"
    shutil.move(str(source), dest)
    vaultsplit.forget(slug)
    return dest


def _redeploy(env: Env, slug: str, target: BackupTarget, mail_hosts: list[str], op_id: str) -> None:
    """Regenerate the shared configuration of the tenant's hosts (and every mail host) and the backup side."""
    hosts = sorted(set(target.hosts))
    for index, call in enumerate(offboard_calls(hosts, target.backup_host, mail_hosts)):
        result = env.playbooks.run(call, run_id=f"{op_id}-offboard{index}", hosts=list(call.limit),
                                   title=f"tenant remove {slug}: {call.playbook}")
        if not result.success:
            raise OperationFailed(f"{slug}: {call.playbook} on {', '.join(call.limit)} failed after the tenant was "
                                  f"removed: rerun `tnoctl deploy` and `tnoctl backup setup`, then "
                                  f"`tnoctl backup shred {slug}`")


def shred_repository(env: Env, target: BackupTarget) -> str:
    """Crypto-shred the tenant's repository and drop every host's borg records of it; a one-word summary."""
    slug, backup_host = target.slug, target.backup_host
    found = env.ssh.run(backup_host, repo_id_command(slug))
    repo_id = found.stdout.strip() if found.ok else ""
    for argv in shred_commands(slug):
        result = env.ssh.run(backup_host, argv, timeout=6 * 3600)
        if not result.ok:
            raise OperationFailed(f"{slug}: {argv[0]} of the repository failed on {backup_host}: "
                                  f"{result.stderr.strip()[:200]}; rerun `tnoctl backup shred {slug}`")
    if repo_id and all(c in "0123456789abcdef" for c in repo_id):
        homes = {backup_host: naming.BACKUP_USER_HOME, **{h: "/root" for h in target.hosts}}
        for host, home in sorted(homes.items()):
            env.ssh.run(host, ["rm", "-rf", "--one-file-system", *borg_state_dirs(home, repo_id)])
    return "shredded"
