"""Repository maintenance on the backup host: `backup list`, `prune`, `recover-deleted`, `shred`.

Everything here runs on the backup host (mail hosts only hold append-only keys: they can add
archives, never remove them). Prune and recover-deleted hold the tenant's lock; shred holds the lock
of an offboarded slug. The reads (``list``, the transactions log) take no lock and write no audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions.backup import (
    TenantResult,
    last_json,
    list_archives,
    per_tenant,
    run_borg,
    run_borg_script,
    tail,
)
from tnoctl.actions.backup_sync import sync_quietly
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.backup import borg, ledger, naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, plan_targets, prune_args, shred_commands
from tnoctl.state import store as state_store

ARCHIVE_COLUMNS = ["archive", "time", "original", "compressed", "deduplicated", "files"]
TRANSACTION_COLUMNS = ["transaction", "utc time"]


@dataclass(frozen=True)
class TenantRequest:
    """A verb on exactly one tenant (``backup list``, the transactions log)."""

    tenant: str


@dataclass(frozen=True)
class PruneRequest:
    """``backup prune``: the tenants (default: every tenant with mail).

    ``accept_deleted``: the operator examined the archives a client deleted (``backup prune``
    refused and named them) and accepts their loss: they are recorded as ``accepted`` and compacted.
    """

    tenants: tuple[str, ...] = ()
    accept_deleted: bool = False


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
    target = _one(env, request.tenant)
    sync_quietly(env, (target.slug,))
    found = list_archives(env, target)
    rows: list[list[object]] = [[a.name, a.time, a.original_bytes, a.compressed_bytes, a.deduplicated_bytes, a.files]
                                for a in found]
    last = last_results(env, target)
    return Outcome(rows=rows, columns=ARCHIVE_COLUMNS, data={"archives": [a.as_dict() for a in found], "last": last},
                   lines=[_last_line(c, r) for c, r in last.items()])


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "never"


def _last_line(component: str, last: dict[str, Any]) -> str:
    """``mail: last run 2026-12-01 16:00:00 UTC ok, last verified ...`` (timer runs included: pulled first)."""
    result = "" if last["last_run_ok"] is None else (" ok" if last["last_run_ok"] else " FAILED")
    failed = last["last_verification_failed_at"] or 0
    verified = ", latest drill FAILED" if failed > (last["last_verified_at"] or 0) else ""
    return (f"{component}: last run {_when(last['last_run_at'])}{result}, "
            f"last verified {_when(last['last_verified_at'])}{verified}")


def last_results(env: Env, target: BackupTarget) -> dict[str, dict[str, Any]]:
    """Per component, the last backup run and the last verification as the store holds them (after the pull)."""
    statuses = env.store.latest_backups()
    out: dict[str, dict[str, Any]] = {}
    for component in target.components:
        status = statuses.get((target.slug, component))
        runs = [r for r in (status.last_success, status.last_failure) if r is not None] if status else []
        last = max(runs, key=lambda r: r.finished_at, default=None)
        out[component] = {
            "last_run_at": last.finished_at if last else None,
            "last_run_ok": last.ok if last else None,
            "last_success_at": status.last_success.finished_at if status and status.last_success else None,
            "last_verified_at": status.last_verified_at if status else None,
            "last_verification_failed_at": status.last_verification_failed_at if status else None,
        }
    return out


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
    """``backup prune``: check the archive ledger, apply the retention, then compact (see prune_one)."""
    params = {"tenants": request.tenants, "accept_deleted": request.accept_deleted or None}
    return per_tenant(env, "backup prune", params, request.tenants,
                      lambda env, target: prune_one(env, target, request.accept_deleted))


def current_archives(env: Env, target: BackupTarget) -> list[str]:
    """Names of every archive in the tenant's repository now (``borg list --json`` on the backup host)."""
    result = run_borg(env, target, ["list", "--json", target.repo])
    if not result.ok:
        raise OperationFailed(f"{target.slug}: borg list failed: {tail(result.stderr)}")
    return [a.name for a in borg.parse_list(result.stdout)]


def manifest_history(env: Env, target: BackupTarget) -> list[tuple[int, str, list[str]]]:
    """Every manifest version still in the repository (tnoctl/hostagent/history.py on the backup host).

    The newest one lists the archives present now, so prune needs no `borg list` of its own before.

    Raises OperationFailed when it cannot be read: prune then refuses to compact (fail closed).
    """
    result = run_borg_script(env, target, naming.HISTORY_SCRIPT, [target.repo], timeout=6 * 3600)
    try:
        doc = last_json(result.stdout) if result.ok else None
        versions = [(int(tx), str(ts), [str(n) for n in names]) for tx, ts, names in (doc or {})["versions"]]
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(f"{target.slug}: the repository's manifest history could not be read "
                              f"({tail(result.stderr) or 'no result'}): not compacted") from None
    return versions


def _mark(env: Env, slug: str, names: list[str], state: str) -> None:
    at = state_store.now()
    for name in names:
        env.store.record_archive(state_store.ArchiveRecord(slug, name, state, at))


def _refused(target: BackupTarget, deleted: list[str], start: float, why: str) -> TenantResult:
    return TenantResult(target.slug, False, f"{len(deleted)} archive(s) {why}: not compacted",
                        state_store.now() - start, {"deleted_archives": deleted}, refused=True,
                        errors=[ledger.deleted_line(target.slug, name) for name in deleted])


def prune_one(env: Env, target: BackupTarget, accept_deleted: bool = False) -> TenantResult:
    """Prune one repository to its retention and compact it, unless a client deleted archives.

    1. the repository's archives are compared with the ledger (tnoctl/backup/ledger.py) and with every
       manifest version still in its segments (history.py): an archive tnoctl created or saw, or that
       an earlier manifest listed, that is gone, and that tnoctl neither pruned nor rolled back, was
       deleted by a client (a compromised mail/office host): refused, nothing pruned or compacted, the
       delete stays recoverable (``backup recover-deleted``). ``accept_deleted`` records them as accepted;
    2. archives not yet in the ledger are recorded as ``seen``;
    3. ``borg prune --list`` per archive kind; what disappeared but is not in borg's list of pruned
       archives was deleted concurrently: refused before compact;
    4. ``borg compact``; the pruned archives are recorded as ``pruned``.
    """
    start = state_store.now()
    slug = target.slug
    try:
        history = manifest_history(env, target)
    except OperationFailed as exc:
        return TenantResult(slug, False, exc.message, state_store.now() - start)
    before = history[-1][2] if history else []  # the newest committed manifest: what `borg list` shows
    known = env.store.archive_ledger(slug)
    deleted = sorted(set(ledger.missing(known, before)) | set(ledger.vanished(history, before, known)))
    if deleted and not accept_deleted:
        return _refused(target, deleted, start, "deleted by a client")
    _mark(env, slug, deleted, "accepted")
    _mark(env, slug, ledger.unseen(known, before), "seen")
    *prunes, compact = prune_args(target)
    pruned: list[str] = []
    for args in prunes:
        result = run_borg(env, target, [args[0], "--list", *args[1:]], timeout=6 * 3600)
        if not result.ok:
            return TenantResult(slug, False, f"borg prune: {tail(result.stderr)}", state_store.now() - start)
        pruned += ledger.pruned_by_borg(result.stderr)
    try:
        after = current_archives(env, target)
    except OperationFailed as exc:
        return TenantResult(slug, False, exc.message, state_store.now() - start)
    _mark(env, slug, pruned, "pruned")
    raced = sorted(set(before) - set(after) - set(pruned))
    if raced:
        return _refused(target, raced, start, "deleted by a client during the prune")
    result = run_borg(env, target, compact, timeout=6 * 3600)
    if not result.ok:
        return TenantResult(slug, False, f"borg compact: {tail(result.stderr)}", state_store.now() - start)
    kept = ", ".join(f"{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items()))
    detail = f"pruned {len(pruned)} archive(s) ({kept}) and compacted"
    if deleted:
        detail += f"; {len(deleted)} deleted archive(s) accepted as lost"
    return TenantResult(slug, True, detail, state_store.now() - start,
                        {"pruned_archives": pruned, "accepted_archives": deleted})


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
    rolled_back: list[str] = []
    if checked.ok:  # archives appended after ``keep`` are gone on purpose: prune must not flag them
        try:
            rolled_back = ledger.missing(env.store.archive_ledger(target.slug), current_archives(env, target))
        except OperationFailed as exc:
            env.output.warn(exc.message)
        _mark(env, target.slug, rolled_back, "rolled_back")
    dropped = done.get("dropped_transactions", [])
    detail = (f"rolled back to transaction {keep}: {len(dropped)} later transaction(s) moved to {quarantine}; "
              f"borg check {'ok' if checked.ok else 'FAILED: ' + tail(checked.stderr)}")
    if stale:
        detail += f"; clear borg cache/security of repo {repo_id} by hand on {', '.join(stale)}"
    data = {"kept": keep, "dropped_transactions": dropped, "quarantine": quarantine, "stale_hosts": stale,
            "rolled_back_archives": rolled_back}
    return TenantResult(target.slug, checked.ok, detail, state_store.now() - start, data)


def check_shred(env: Env, request: ShredRequest) -> None:
    """Refuse to shred a current tenant (InvalidInput): the CLI calls this before asking."""
    if any(t.slug == request.slug for t in env.inventory.rows):
        raise InvalidInput(f"{request.slug} is still a tenant: offboard it first (tnoctl tenant remove {request.slug})")


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
