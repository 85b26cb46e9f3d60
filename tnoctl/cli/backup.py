"""`tnoctl backup setup|run|list|verify|drill|prune`: per-tenant encrypted borg backups (docs/backups.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput

TENANT_HELP = "Tenant slug (repeatable; default: every tenant with mail)."


def backup_env(app: AppContext):
    """Load the inventory and build the backup environment (SSH with host-key checking)."""
    from tnoctl.actions.backup import BackupEnv
    from tnoctl.backup.remote import BackupSsh
    from tnoctl.config.load import load_inventory

    inventory = load_inventory(app.inventory)
    ssh = BackupSsh.for_inventory(inventory)
    return BackupEnv(inventory, app.inventory, app.state_dir, app.vault_password_file, ssh)


def scrubber():
    """Redaction for run output: every secret registered so far (passphrases are added when decrypted)."""
    from tnoctl.state.redact import SECRETS

    return SECRETS.scrub_text


def per_tenant(app: AppContext, verb: str, tenants: tuple[str, ...], action: Callable, lock: bool = True) -> int:
    """Audit one operation, hold the tenants' locks, run ``action(env, target)`` per tenant, summarise."""
    from tnoctl.actions.backup import SUMMARY_COLUMNS, summary_rows
    from tnoctl.plan.backup import plan_targets
    from tnoctl.state import audit, locks

    env = backup_env(app)
    targets = plan_targets(env.inventory, tenants)
    if not targets:
        raise InvalidInput("no tenant with mail selected")
    slugs = [t.slug for t in targets]
    with audit.operation(app.state_dir, verb, sys.argv[1:], tenants=slugs,
                         hosts=sorted({t.mail_host for t in targets} | {targets[0].backup_host})) as op:
        held = locks.hold(app.state_dir, slugs if lock else [], verb, op.id)
        with held, env.ssh:
            outcomes = []
            for target in targets:
                app.info(f"{verb}: {target.slug} ...")
                outcomes.append(action(env, target))
        app.print_table(SUMMARY_COLUMNS, summary_rows(outcomes))
        failed = [o.slug for o in outcomes if not o.ok]
        op.details["outcomes"] = {o.slug: {"ok": o.ok, "detail": o.detail} for o in outcomes}
        if failed:
            op.details["failed_tenants"] = failed
            op.result, op.exit_code = "failed", int(ExitCode.FAILED)
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


@click.group("backup")
def backup() -> None:
    """Per-tenant encrypted borg backups: run, list, verify, drill, prune, recover-deleted.

    \b
    Example:
      tnoctl backup run --tenant givors && tnoctl backup drill --tenant givors
    """


@backup.command("setup")
@click.option("--host", "-H", "hosts", multiple=True, help="Only these hosts (default: mail and backup hosts).")
@click.pass_obj
def setup(app: AppContext, hosts: tuple[str, ...]) -> int:
    """Deploy the backup machinery (role tno_backup): keys, append-only access, borgmatic, timers.

    \b
    Example:
      tnoctl backup setup
    """
    from tnoctl.actions.deploy import RunContext
    from tnoctl.config.load import load_inventory
    from tnoctl.plan.backup import setup_call
    from tnoctl.run.ansible import run_playbook
    from tnoctl.run.progress import RunProgress
    from tnoctl.state import audit

    inventory = load_inventory(app.inventory)
    call = setup_call(hosts)
    with audit.operation(app.state_dir, "backup setup", sys.argv[1:], hosts=list(hosts)) as op:
        ctx = RunContext(app.inventory, app.state_dir, op.id, app.vault_password_file, app.stderr,
                         scrubber())
        targets = list(hosts) or sorted(n for n, h in inventory.hosts.items() if {"mail", "backup"} & set(h.groups))
        with RunProgress(app.stderr, targets, "backup setup") as progress:  # type: ignore[arg-type]
            result = run_playbook(call, inventory=ctx.inventory, state_dir=ctx.state_dir, run_id=f"{op.id}-setup",
                                  vault_password_file=ctx.vault_password_file, on_event=progress, redact=ctx.redact)
        op.artifacts = str(result.artifacts_dir)
        app.info(f"artifacts: {result.artifacts_dir}")
        if not result.success:
            for failure in result.failed_tasks:
                app.err_console.print(f"{failure.host}: {failure.task}: {failure.message}", markup=False)
            op.result, op.exit_code = "failed", int(ExitCode.FAILED)
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


@backup.command("run")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--tag", default=None, help="Safety snapshot tag, in the archive name ([A-Za-z0-9_-], <= 64).")
@click.option("--component", "components", multiple=True, type=click.Choice(["mail", "office"]),
              help="Only these components (default: mail, and office for tenants with office).")
@click.pass_obj
def run(app: AppContext, tenants: tuple[str, ...], tag: str | None, components: tuple[str, ...]) -> int:
    """Back up now: mail (doveadm backup staging, manifest, borgmatic create), then office config.

    Takes the tenant locks (exit 3 while a restore holds one), records result, sizes and duration in
    the state store (and the textfile on the host). Exit 1 if any tenant failed. A --tag snapshot
    (`<slug>.tag-<tag>-<time>`) is not counted by the scheduled retention (docs/backups.md).

    \b
    Example:
      tnoctl backup run --tenant givors --tenant corbas
      tnoctl backup run --tenant givors --tag pre-upgrade-manual
    """
    from tnoctl.actions.backup import run_one
    from tnoctl.backup.naming import check_tag

    try:
        check_tag(tag) if tag is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None

    def action(env, target):
        wanted = tuple(c for c in target.components if c in components) if components else None
        return run_one(env, target, tag=tag, components=wanted or None)

    return per_tenant(app, "backup", tenants, action)


@backup.command("list")
@click.option("--tenant", "-t", "tenant", required=True, help="Tenant slug.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_(app: AppContext, tenant: str, as_json: bool) -> None:
    """List a tenant's archives with time and sizes (read on the backup host).

    \b
    Example:
      tnoctl backup list --tenant givors --json
    """
    from tnoctl.actions.backup import list_archives
    from tnoctl.plan.backup import plan_targets

    env = backup_env(app)
    (target,) = plan_targets(env.inventory, [tenant])
    with env.ssh:
        archives = list_archives(env, target)
    if as_json:
        app.print_json([a.as_dict() for a in archives])
        return
    rows = [[a.name, a.time, a.original_bytes, a.compressed_bytes, a.deduplicated_bytes, a.files] for a in archives]
    app.print_table(["archive", "time", "original", "compressed", "deduplicated", "files"], rows)


@backup.command("verify")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.pass_obj
def verify(app: AppContext, tenants: tuple[str, ...]) -> int:
    """borg repository and archive consistency checks, on the backup host.

    \b
    Example:
      tnoctl backup verify --tenant givors
    """
    from tnoctl.actions.backup import verify as verify_action

    return per_tenant(app, "backup verify", tenants, verify_action, lock=False)


@backup.command("drill")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--archive", default=None, help="Drill this mail archive (default: the latest).")
@click.pass_obj
def drill(app: AppContext, tenants: tuple[str, ...], archive: str | None) -> int:
    """Restore the latest mail archive into a scratch dir and compare it with its manifest.

    Every message must be present and byte-identical; for tenants with office, the latest office
    archive must hold coolwsd.xml (its files are listed). Records the verification time (alert
    TnoBackupUnverified). Never touches a live mailbox. Exit 1 on any difference or read error.

    \b
    Example:
      tnoctl backup drill --tenant givors
    """
    from tnoctl.actions.backup import drill as drill_action

    if archive and len(tenants) != 1:
        raise InvalidInput("--archive needs exactly one --tenant")
    return per_tenant(app, "backup drill", tenants, lambda env, t: drill_action(env, t, archive), lock=False)


@backup.command("recover-deleted")
@click.option("--tenant", "-t", "tenant", required=True, help="Tenant slug.")
@click.option("--transaction", type=int, default=None,
              help="Last good transaction to keep (default: only list the transactions log).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable transactions list.")
@click.pass_obj
def recover_deleted(app: AppContext, tenant: str, transaction: int | None, yes: bool, as_json: bool) -> int | None:
    """Undo archive deletions made through an append-only key (roll the repository back).

    Without --transaction: list the repository's transactions log (id, UTC time) to pick the last
    good one (the one before the attack). With it: the transactions appended later are moved to a
    quarantine dir on the backup host, the index is rebuilt and checked, and the clients' borg caches
    of the repository are reset. Backups made after that transaction are rolled back too: run
    `tnoctl backup run` afterwards.

    \b
    Example:
      tnoctl backup recover-deleted --tenant givors
      tnoctl backup recover-deleted --tenant givors --transaction 42 --yes
    """
    from tnoctl.actions.backup import recover_deleted as recover_action
    from tnoctl.actions.backup import transactions
    from tnoctl.plan.backup import plan_targets

    if transaction is None:
        env = backup_env(app)
        (target,) = plan_targets(env.inventory, [tenant])
        with env.ssh:
            rows = transactions(env, target)
        if as_json:
            app.print_json([{"transaction": t, "utc_time": u} for t, u in rows])
        else:
            app.print_table(["transaction", "utc time"], [list(r) for r in rows])
        return None
    if not yes and not click.confirm(f"Roll {tenant}'s repository back to transaction {transaction}?", default=False):
        return int(ExitCode.REFUSED)
    return per_tenant(app, "backup recover-deleted", (tenant,), lambda env, t: recover_action(env, t, transaction))


@backup.command("prune")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def prune(app: AppContext, tenants: tuple[str, ...], yes: bool) -> int:
    """Apply the retention (platform defaults + tenant overrides) and compact, on the backup host.

    \b
    Example:
      tnoctl backup prune --tenant givors --yes
    """
    from tnoctl.actions.backup import prune as prune_action

    if not yes and not click.confirm("Delete archives beyond the retention?", default=False):
        return int(ExitCode.REFUSED)
    return per_tenant(app, "backup prune", tenants, prune_action)


@backup.command("shred")
@click.argument("slug")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def shred(app: AppContext, slug: str, yes: bool) -> int:
    """Crypto-shred an offboarded tenant's repository: destroy its key, then its data.

    The repokey (encrypted by the passphrase) lives in the repository's `config`: it is overwritten
    (`shred`) first, so even a copy of the data and of the passphrase can no longer be read; then the
    repository is deleted. Remove `tno_vault_borg_<slug>` from the vault afterwards (docs/backups.md).

    \b
    Example:
      tnoctl backup shred corbas --yes
    """
    from tnoctl.backup import naming
    from tnoctl.state import audit, locks

    env = backup_env(app)
    if any(t.slug == slug for t in env.inventory.tenants):
        raise InvalidInput(f"{slug} is still a tenant: offboard it first (tnoctl tenant remove {slug})")
    if not yes and not click.confirm(f"Destroy every backup of {slug} for ever?", default=False):
        return int(ExitCode.REFUSED)
    host = env.inventory.platform.tno_backup_host
    repo = naming.repo_path(slug)
    with audit.operation(app.state_dir, "backup shred", sys.argv[1:], tenants=[slug], hosts=[host]) as op, \
            locks.hold(app.state_dir, [slug], "backup shred", op.id), env.ssh:
        steps = [["shred", "-u", "-n", "3", "-z", f"{repo}/config"],
                 ["rm", "-rf", "--one-file-system", repo, f"{naming.QUARANTINE_ROOT}/{slug}"]]
        for argv in steps:
            result = env.ssh.run(host, argv, timeout=6 * 3600)
            if not result.ok:
                op.result, op.exit_code = "failed", int(ExitCode.FAILED)
                app.warn(f"{host}: {argv[0]} failed: {result.stderr.strip()[:200]}")
                return int(ExitCode.FAILED)
        app.info(f"{slug}: repository key shredded and {repo} removed on {host}; now delete "
                 f"{naming.passphrase_var(slug)} from the vault")
    return int(ExitCode.OK)
