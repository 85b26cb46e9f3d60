"""`tnoctl backup setup|run|list|verify|drill|prune|recover-deleted|shred` (docs/backups.md).

Thin verbs: parse, validate, confirm, call one action (tnoctl/actions/backup*.py), render.
"""

from __future__ import annotations

import click

from tnoctl.cli.confirm import confirm, refused, render
from tnoctl.cli.context import AppContext

TENANT_HELP = "Tenant slug (repeatable; default: every tenant with mail)."
JSON_HELP = ("Machine-readable output: {tenants: [{slug, ok, detail, duration_seconds, data}]} "
             "(README: JSON output).")


@click.group("backup")
def backup() -> None:
    """Per-tenant encrypted borg backups: setup, run, list, verify, drill, prune, recover-deleted, shred.

    \b
    Example:
      tnoctl backup run --tenant givors && tnoctl backup drill --tenant givors
    """


@backup.command("setup")
@click.option("--host", "-H", "hosts", multiple=True, help="Only these hosts (default: mail and backup hosts).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def setup(app: AppContext, hosts: tuple[str, ...], yes: bool) -> int:
    """Deploy the backup machinery (role tno_backup): keys, append-only access, borgmatic, timers.

    Changes the hosts like a deploy, so it asks first (without a terminal: --yes, else exit 2).

    \b
    Example:
      tnoctl backup setup --yes
    """
    from tnoctl.actions.backup_setup import SetupRequest, setup
    from tnoctl.errors import InvalidInput

    unknown = [h for h in hosts if h not in app.env.inventory.hosts]
    if unknown:
        raise InvalidInput(f"--host {unknown[0]}: not a host of the inventory {app.inventory}")
    where = ", ".join(hosts) or "every mail and backup host"
    if not confirm("backup setup", f"Deploy the backup machinery to {where}?", yes):
        return refused(app)
    return render(app, setup(app.env, SetupRequest(hosts)))


@backup.command("run")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--tag", default=None, help="Safety snapshot tag, in the archive name ([A-Za-z0-9_-], <= 64).")
@click.option("--component", "components", multiple=True, type=click.Choice(["mail", "office"]),
              help="Only these components (default: mail, and office for tenants with office).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def run(app: AppContext, tenants: tuple[str, ...], tag: str | None, components: tuple[str, ...],
        as_json: bool) -> int:
    """Back up now: mail (doveadm backup staging, manifest, borgmatic create), then office config.

    Takes the tenant locks (exit 3 while a restore holds one), records result, sizes and duration in
    the state store (and the textfile on the host). Exit 1 if any tenant failed. A --tag snapshot
    (`<slug>.tag-<tag>-<time>`) is not counted by the scheduled retention (docs/backups.md).

    \b
    Example:
      tnoctl backup run --tenant givors --tenant corbas
      tnoctl backup run --tenant givors --tag pre-upgrade-manual
    """
    from tnoctl.actions.backup import BackupRunRequest, check_tag
    from tnoctl.actions.backup import run as run_action

    check_tag(tag)
    return render(app, run_action(app.env, BackupRunRequest(tenants, tag, components)), as_json=as_json)


@backup.command("list")
@click.option("--tenant", "-t", "tenant", required=True, help="Tenant slug.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_(app: AppContext, tenant: str, as_json: bool) -> int:
    """List a tenant's archives with time and sizes (read on the backup host).

    \b
    Example:
      tnoctl backup list --tenant givors --json
    """
    from tnoctl.actions.backup_repo import TenantRequest, archives

    outcome = archives(app.env, TenantRequest(tenant))
    if as_json:
        app.print_json(outcome.data["archives"])
        return int(outcome.exit_code)
    return render(app, outcome)


@backup.command("verify")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def verify(app: AppContext, tenants: tuple[str, ...], as_json: bool) -> int:
    """borg repository and archive consistency checks, on the backup host.

    \b
    Example:
      tnoctl backup verify --tenant givors
    """
    from tnoctl.actions.backup_checks import VerifyRequest
    from tnoctl.actions.backup_checks import verify as verify_action

    return render(app, verify_action(app.env, VerifyRequest(tenants)), as_json=as_json)


@backup.command("drill")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--archive", default=None, help="Drill this mail archive (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def drill(app: AppContext, tenants: tuple[str, ...], archive: str | None, as_json: bool) -> int:
    """Restore the latest mail archive into a scratch dir and compare it with its manifest.

    Every message must be present and byte-identical; for tenants with office, the latest office
    archive must hold coolwsd.xml (its files are listed). Records the verification time (alert
    TnoBackupUnverified). Never touches a live mailbox. Exit 1 on any difference or read error.

    \b
    Example:
      tnoctl backup drill --tenant givors
    """
    from tnoctl.actions.backup_checks import DrillRequest
    from tnoctl.actions.backup_checks import drill as drill_action

    return render(app, drill_action(app.env, DrillRequest(tenants, archive)), as_json=as_json)


@backup.command("recover-deleted")
@click.option("--tenant", "-t", "tenant", required=True, help="Tenant slug.")
@click.option("--transaction", type=int, default=None,
              help="Last good transaction to keep (default: only list the transactions log).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable transactions list.")
@click.pass_obj
def recover_deleted(app: AppContext, tenant: str, transaction: int | None, yes: bool, as_json: bool) -> int:
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
    from tnoctl.actions import backup_repo
    from tnoctl.actions.backup import targets_of

    if transaction is None:
        outcome = backup_repo.transactions(app.env, backup_repo.TenantRequest(tenant))
        if as_json:
            app.print_json(outcome.data["transactions"])
            return int(outcome.exit_code)
        return render(app, outcome)
    targets_of(app.env, [tenant])  # an unknown tenant is refused before asking
    if not confirm("backup recover-deleted", f"Roll {tenant}'s repository back to transaction {transaction}?", yes):
        return refused(app)
    return render(app, backup_repo.recover_deleted(app.env, backup_repo.RecoverRequest(tenant, transaction)))


@backup.command("prune")
@click.option("--tenant", "-t", "tenants", multiple=True, help=TENANT_HELP)
@click.option("--accept-deleted", is_flag=True,
              help="Compact even though a client deleted archives (after examining them: their loss is final).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def prune(app: AppContext, tenants: tuple[str, ...], accept_deleted: bool, yes: bool) -> int:
    """Apply the retention (platform defaults + tenant overrides) and compact, on the backup host.

    A repository where archives disappeared that tnoctl did not prune (deleted by a mail or office
    host's append-only key) is not touched: each archive is named on one line, exit 4; bring them
    back with `backup recover-deleted`, or compact anyway with --accept-deleted.

    \b
    Example:
      tnoctl backup prune --tenant givors --yes
    """
    from tnoctl.actions import backup_repo
    from tnoctl.actions.backup import targets_of

    targets_of(app.env, tenants)  # unknown tenants are refused before asking
    question = ("Delete archives beyond the retention AND make client deletions permanent?" if accept_deleted
                else "Delete archives beyond the retention?")
    if not confirm("backup prune", question, yes):
        return refused(app)
    return render(app, backup_repo.prune(app.env, backup_repo.PruneRequest(tenants, accept_deleted)))


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
    from tnoctl.actions import backup_repo

    request = backup_repo.ShredRequest(slug)
    backup_repo.check_shred(app.env, request)
    if not confirm("backup shred", f"Destroy every backup of {slug} for ever?", yes):
        return refused(app)
    return render(app, backup_repo.shred(app.env, request))
