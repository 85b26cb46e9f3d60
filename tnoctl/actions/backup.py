"""`backup run` and what every per-tenant backup verb shares: targets, operation, summary, borg over SSH.

Why SSH and not a playbook per run: a backup is one command on one host (``tno-backup run KEY``,
the same as the systemd timer), and Ansible's start-up would cost more than an incremental backup
(the benchmark goal is within 10% of raw borg). Deployment of the backup machinery itself is a
playbook (``backup setup``, tnoctl/actions/backup_setup.py). Verify and drill live in
backup_checks.py, prune, recover-deleted and shred in backup_repo.py; each runs inside
:func:`per_tenant`, the one operation of a per-tenant backup verb.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.backup import borg, naming
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, info_args, plan_targets
from tnoctl.run.ssh import CommandResult
from tnoctl.state import store as state_store

SUMMARY_COLUMNS = ["tenant", "result", "duration", "detail"]


@dataclass
class TenantResult:
    """Result of one backup action on one tenant (a row of the summary table)."""

    slug: str
    ok: bool
    detail: str = ""
    duration_seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    refused: bool = False  # a guard refused this tenant (exit 4 rather than 1), e.g. prune's ledger check
    errors: list[str] = field(default_factory=list)  # one stderr line each (e.g. every deleted archive)


@dataclass(frozen=True)
class BackupRunRequest:
    """``backup run``: the tenants (default: every tenant with mail), a safety tag, the components."""

    tenants: tuple[str, ...] = ()
    tag: str | None = None
    components: tuple[str, ...] = ()  # default: mail, and office for tenants with office


def summary_rows(results: Sequence[TenantResult]) -> list[list[object]]:
    """Final summary table rows."""
    return [[r.slug, "ok" if r.ok else ("REFUSED" if r.refused else "FAILED"), f"{r.duration_seconds:.1f}s", r.detail]
            for r in results]


def targets_of(env: Env, tenants: Sequence[str]) -> list[BackupTarget]:
    """The selected tenants' backup targets (InvalidInput when none has a service to back up)."""
    targets = plan_targets(env.inventory, tuple(tenants))
    if not targets:
        raise InvalidInput("no tenant with a service to back up selected")
    return targets


def per_tenant(env: Env, verb: str, params: Mapping[str, Any], tenants: Sequence[str],
               action: Callable[[Env, BackupTarget], TenantResult], *, lock: bool = True) -> Outcome:
    """One audited operation (tenant locks when ``lock``) running ``action`` per tenant.

    Exit 1 if any tenant failed, 4 (refused) if a guard refused one and none failed otherwise.
    """
    targets = targets_of(env, tenants)
    slugs = [t.slug for t in targets]
    hosts = sorted({h for t in targets for h in t.hosts} | {targets[0].backup_host})
    with operation(env, verb, params, tenants=slugs, hosts=hosts, lock=lock) as op:
        results = []
        for target in targets:
            env.output.info(f"{verb}: {target.slug} ...")
            results.append(action(env, target))
        op.details["outcomes"] = {r.slug: {"ok": r.ok, "detail": r.detail} for r in results}
        failed = [r.slug for r in results if not r.ok]
        if failed:
            op.details["failed_tenants"] = failed
            refused_only = all(r.refused for r in results if not r.ok)
            code = ExitCode.REFUSED if refused_only else ExitCode.FAILED
            op.fail(code, reason=f"{len(failed)} tenant(s) {'refused' if refused_only else 'failed'}: "
                                 f"{', '.join(failed)}")
        return outcome_of(op, rows=summary_rows(results), columns=SUMMARY_COLUMNS,
                          data={"tenants": [asdict(r) for r in results]},
                          errors=[line for r in results for line in r.errors])


def check_tag(tag: str | None) -> None:
    """A safety snapshot tag is valid (``[A-Za-z0-9_-]``, at most 64), else InvalidInput naming --tag."""
    try:
        naming.check_tag(tag) if tag is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def run(env: Env, request: BackupRunRequest) -> Outcome:
    """``backup run``: back up every selected tenant now, under its lock, and summarise."""
    check_tag(request.tag)

    def one(env: Env, target: BackupTarget) -> TenantResult:
        wanted = tuple(c for c in target.components if c in request.components) if request.components else None
        return run_one(env, target, tag=request.tag, components=wanted or None)

    params = {"tenants": request.tenants, "tag": request.tag, "components": request.components}
    return per_tenant(env, "backup", params, request.tenants, one)


def run_one(env: Env, target: BackupTarget, tag: str | None = None,
            components: tuple[str, ...] | None = None) -> TenantResult:
    """Back up the tenant now: ``tno-backup run KEY [--tag TAG]`` on each component's host, mail first.

    ``tag`` (e.g. ``pre-upgrade-<op-id>``) names a safety snapshot ``<slug>[.office].tag-<tag>-<time>``
    that the scheduled retention never counts (plan.prune_args). Each component's result, failure
    too, is recorded in the state store; the result is ok only when every component's is. The caller
    holds the operation and the tenant's lock (``backup run``, ``tenant remove``, upgrade snapshots).
    """
    check_tag(tag)
    parts = [_run_component(env, target, c, tag) for c in components or target.components]
    ok = all(p.ok for p in parts)
    duration = sum(p.duration_seconds for p in parts)
    env.store.record_operation(state_store.OperationRecord(target.slug, "backup", ok, state_store.now(), duration))
    data = dict(parts[0].data)
    data.update({p.data["component"]: p.data for p in parts[1:]})
    detail = "; ".join(p.detail for p in parts if p.detail)
    return TenantResult(target.slug, ok, detail, duration, data)


def _run_component(env: Env, target: BackupTarget, component: str, tag: str | None) -> TenantResult:
    now = state_store.now()
    host = target.host_of(component)
    argv = [naming.AGENT, "run", naming.unit_key(target.slug, component), *(["--tag", tag] if tag else [])]
    try:
        result = env.ssh.run(host, argv, timeout=6 * 3600)
        data = last_json(result.stdout)
        ok, detail = bool(data.get("ok")) and result.ok, str(data.get("detail", ""))
    except OperationFailed as exc:  # host unreachable: a failed backup all the same
        data, ok, detail = {"finished_at": now, "duration_seconds": state_store.now() - now}, False, exc.message
    except ValueError:
        data, ok = {"finished_at": now}, False
        detail = f"unexpected output from {naming.AGENT} (rc {result.rc}): {result.stderr.strip()[-200:]}"
    data["component"] = component
    duration = float(data.get("duration_seconds", 0.0))
    env.store.record_backup(state_store.BackupResult(
        tenant=target.slug,
        component=component,
        ok=ok,
        finished_at=float(data.get("finished_at", now)),
        duration_seconds=duration,
        original_bytes=data.get("original_bytes") if ok else None,
        compressed_bytes=data.get("compressed_bytes") if ok else None,
        deduplicated_bytes=data.get("deduplicated_bytes") if ok else None,
        detail=detail[:300],
    ))
    if ok and isinstance(data.get("archive"), str) and data["archive"]:  # the ledger backup prune checks
        env.store.record_archive(state_store.ArchiveRecord(target.slug, data["archive"], "created", state_store.now()))
    label = f"{component}: {detail}" if detail else str(data.get("archive", ""))
    return TenantResult(target.slug, ok, label, duration, data)


def passphrase(env: Env, slug: str) -> str:
    """The tenant's borg passphrase from the vault; registered for redaction before anything logs."""
    from tnoctl.config.vault import decrypt_value
    from tnoctl.state.redact import SECRETS

    if env.vault_password_file is None:
        raise InvalidInput("this needs the vault password (--vault-password-file or $TNO_VAULT_PASSWORD_FILE)")
    value = decrypt_value(env.inventory_path, env.vault_password_file, naming.passphrase_var(slug))
    SECRETS.add_all([value])
    return value


def run_borg(env: Env, target: BackupTarget, args: list[str], cwd: str | None = None,
             timeout: float = 3600) -> CommandResult:
    """``borg ARGS`` on the tenant's backup host as the repository owner, passphrase on stdin."""
    argv, data = borg.borg_command(passphrase(env, target.slug), args, cwd)
    return env.ssh.run(target.backup_host, argv, timeout=timeout, input=data)


def run_borg_script(env: Env, target: BackupTarget, script: str, args: list[str],
                    timeout: float = 3600) -> CommandResult:
    """A host script that uses borg as a library (Debian's python3), run like ``run_borg``."""
    argv, data = borg.borg_command(passphrase(env, target.slug), args, program=("/usr/bin/python3", script))
    return env.ssh.run(target.backup_host, argv, timeout=timeout, input=data)


def list_archives(env: Env, target: BackupTarget) -> list[borg.Archive]:
    """Archives of the tenant with their sizes (oldest first), read on the backup host."""
    result = run_borg(env, target, info_args(target))
    if not result.ok:
        raise OperationFailed(f"{target.slug}: borg info failed: {tail(result.stderr)}")
    return borg.parse_info(result.stdout)


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object line of a command's output (the agent prints exactly one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON result in the output")


def tail(text: str, lines: int = 2) -> str:
    """The last non-empty lines of a command's output, on one line (for details and errors)."""
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[:300] or "(no output)"
