"""Repository maintenance on the backup host: `backup list`, `prune`, `recover-deleted`, `shred`.

Everything here runs on the backup host (mail hosts only hold append-only keys: they can add
archives, never remove them). Prune and recover-deleted hold the tenant's lock; shred holds the lock
of an offboarded slug. The reads (``list``, the transactions log) take no lock and write no audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from tnoctl.actions.backup import TenantResult, last_json, list_archives, per_tenant, run_borg, tail
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, plan_targets, prune_args
from tnoctl.state import store as state_store

ARCHIVE_COLUMNS = ["archive", "time", "original", "compressed", "deduplicated", "files"]
TRANSACTION_COLUMNS = ["transaction", "utc time"]


@dataclass(frozen=True)
class TenantRequest:
    """A verb on exactly one tenant (``backup list``, the transactions log)."""

    tenant: str


@dataclass(frozen=True)
class PruneRequest:
    """``backup prune``: the tenants (default: every tenant with mail)."""

    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecoverRequest:
    """``backup recover-deleted --transaction N``: keep transactions up to ``transaction``."""

    tenant: str
    transaction: int


@dataclass(frozen=True)
class ShredRequest:
    """``backup shred SLUG``: an offboarded tenant's slug."""

    slug: str


def _one(env: Env, slug: str) -> BackupTarget:
    (target,) = plan_targets(env.inventory, [slug])
    return target


def archives(env: Env, request: TenantRequest) -> Outcome:
    """``backup list``: the tenant's archives with time and sizes (``data["archives"]`` for --json)."""
    found = list_archives(env, _one(env, request.tenant))
    rows: list[list[object]] = [[a.name, a.time, a.original_bytes, a.compressed_bytes, a.deduplicated_bytes, a.files]
                                for a in found]
    return Outcome(rows=rows, columns=ARCHIVE_COLUMNS, data={"archives": [a.as_dict() for a in found]})


def transactions(env: Env, request: TenantRequest) -> Outcome:
    """The repository's append-only ``transactions`` log: (id, UTC time), oldest first."""
    target = _one(env, request.tenant)
    result = env.ssh.run(target.backup_host,
                         borg.owner_command("python3", naming.ROLLBACK_SCRIPT, "transactions", target.repo))
    try:
        found = [(int(t), str(u)) for t, u in last_json(result.stdout)["transactions"]]
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(f"{target.slug}: cannot read the transactions log: {tail(result.stderr)}") from None
    return Outcome(rows=[[t, u] for t, u in found], columns=TRANSACTION_COLUMNS,
                   data={"transactions": [{"transaction": t, "utc_time": u} for t, u in found]})


def prune(env: Env, request: PruneRequest) -> Outcome:
    """``backup prune``: the retention (platform defaults + tenant overrides), then compact."""
    return per_tenant(env, "backup prune", {"tenants": request.tenants}, request.tenants, prune_one)


def prune_one(env: Env, target: BackupTarget) -> TenantResult:
    """Prune one repository to its retention and compact it."""
    start = state_store.now()
    for args in prune_args(target):
        result = run_borg(env, target, args, timeout=6 * 3600)
        if not result.ok:
            return TenantResult(target.slug, False, f"borg {args[0]}: {tail(result.stderr)}", state_store.now() - start)
    kept = ", ".join(f"{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items()))
    return TenantResult(target.slug, True, f"pruned ({kept}) and compacted", state_store.now() - start)


def recover_deleted(env: Env, request: RecoverRequest) -> Outcome:
    """``backup recover-deleted``: roll the repository back to ``request.transaction`` (see recover_one)."""
    params = {"tenant": request.tenant, "transaction": request.transaction}
    return per_tenant(env, "backup recover-deleted", params, (request.tenant,),
                      lambda env, target: recover_one(env, target, request.transaction))


def recover_one(env: Env, target: BackupTarget, keep: int) -> TenantResult:
    """Undo what was appended after transaction ``keep`` (an attacker's delete/prune), on the backup host.

    1. rollback.py moves later segments and index files to a quarantine dir, under borg's lock;
    2. ``borg check --repository-only`` rebuilds the index from the remaining segments and checks them;
    3. the clients' borg cache and security records of this repository (backup host owner, mail and
       office hosts) are dropped: they remember the newer manifest and would refuse the rolled-back
       repository as a replay attack. Their next run re-reads files once (the files cache is gone).
    """
    start = state_store.now()
    quarantine = f"{naming.QUARANTINE_ROOT}/{target.slug}/{state_store.now():.0f}"
    argv = borg.owner_command("python3", naming.ROLLBACK_SCRIPT, "rollback", target.repo, str(keep), quarantine)
    result = env.ssh.run(target.backup_host, argv, timeout=3600)
    try:
        done = last_json(result.stdout)
    except ValueError:
        return TenantResult(target.slug, False, f"rollback failed: {tail(result.stderr)}", state_store.now() - start)
    checked = run_borg(env, target, ["check", "--repository-only", target.repo], timeout=6 * 3600)
    repo_id = str(done["repo_id"])
    homes = {target.backup_host: naming.BACKUP_USER_HOME, **{target.host_of(c): "/root" for c in target.components}}
    stale = []
    for host, home in homes.items():
        dirs = [f"{home}/.config/borg/security/{repo_id}", f"{home}/.cache/borg/{repo_id}"]
        try:
            if not env.ssh.run(host, ["rm", "-rf", "--one-file-system", *dirs]).ok:
                stale.append(host)
        except OperationFailed:
            stale.append(host)
    dropped = done.get("dropped_transactions", [])
    detail = (f"rolled back to transaction {keep}: {len(dropped)} later transaction(s) moved to {quarantine}; "
              f"borg check {'ok' if checked.ok else 'FAILED: ' + tail(checked.stderr)}")
    if stale:
        detail += f"; clear borg cache/security of repo {repo_id} by hand on {', '.join(stale)}"
    data = {"kept": keep, "dropped_transactions": dropped, "quarantine": quarantine, "stale_hosts": stale}
    return TenantResult(target.slug, checked.ok, detail, state_store.now() - start, data)


def check_shred(env: Env, request: ShredRequest) -> None:
    """Refuse to shred a current tenant (InvalidInput): the CLI calls this before asking."""
    if any(t.slug == request.slug for t in env.inventory.rows):
        raise InvalidInput(f"{request.slug} is still a tenant: offboard it first (tnoctl tenant remove {request.slug})")


def shred_commands(slug: str) -> list[list[str]]:
    """The key first (``shred`` of the repokey in ``config``), then the repository and its quarantine."""
    repo = naming.repo_path(slug)
    return [["shred", "-u", "-n", "3", "-z", f"{repo}/config"],
            ["rm", "-rf", "--one-file-system", repo, f"{naming.QUARANTINE_ROOT}/{slug}"]]


def shred(env: Env, request: ShredRequest) -> Outcome:
    """``backup shred``: crypto-shred an offboarded tenant's repository on the backup host."""
    check_shred(env, request)
    slug = request.slug
    host = env.inventory.platform.tno_backup_host
    with operation(env, "backup shred", {"slug": slug}, tenants=[slug], hosts=[host]) as op:
        for argv in shred_commands(slug):
            result = env.ssh.run(host, argv, timeout=6 * 3600)
            if not result.ok:
                reason = f"{host}: {argv[0]} failed: {result.stderr.strip()[:200]}"
                op.fail(reason=reason)
                return outcome_of(op, errors=[reason])
        return outcome_of(op, message=f"{slug}: repository key shredded and {naming.repo_path(slug)} removed on "
                                      f"{host}; now delete {naming.passphrase_var(slug)} from the vault")
