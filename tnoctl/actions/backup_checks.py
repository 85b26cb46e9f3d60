"""`backup verify` and `backup drill`: prove a tenant's backups can be read back. No tenant lock.

Both read on the backup host with the passphrase from the vault, so they also prove the vault copy
of the passphrase opens the repository (what a disaster recovery depends on). A drill extracts the
latest mail archive into a scratch dir and checks it against its manifest; it never touches a live
mailbox, and records the verification time (alert TnoBackupUnverified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tnoctl.actions.backup import TenantResult, last_json, list_archives, per_tenant, run_borg, tail
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput
from tnoctl.plan.backup import BackupTarget, check_args, extract_args, list_paths_args
from tnoctl.state import store as state_store

OFFICE_REQUIRED = "etc/coolwsd/coolwsd.xml"  # what `backup drill` requires in the latest office archive


@dataclass(frozen=True)
class VerifyRequest:
    """``backup verify``: the tenants (default: every tenant with mail)."""

    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillRequest:
    """``backup drill``: the tenants, and a named mail archive (only with exactly one tenant)."""

    tenants: tuple[str, ...] = ()
    archive: str | None = None


def verify(env: Env, request: VerifyRequest) -> Outcome:
    """``backup verify``: borg repository and archive checks on the backup host, per tenant."""
    return per_tenant(env, "backup verify", {"tenants": request.tenants}, request.tenants, verify_one, lock=False)


def verify_one(env: Env, target: BackupTarget) -> TenantResult:
    """borg repository and archive checks of one tenant's repository."""
    start = state_store.now()
    for args in check_args(target):
        result = run_borg(env, target, args, timeout=6 * 3600)
        if not result.ok:
            return TenantResult(target.slug, False, f"borg {' '.join(args[:2])}: {tail(result.stderr)}",
                                state_store.now() - start)
    return TenantResult(target.slug, True, "repository and archives consistent", state_store.now() - start)


def drill(env: Env, request: DrillRequest) -> Outcome:
    """``backup drill``: restore-and-compare per tenant (see the module docstring)."""
    if request.archive and len(request.tenants) != 1:
        raise InvalidInput("--archive needs exactly one --tenant")
    params = {"tenants": request.tenants, "archive": request.archive}
    return per_tenant(env, "backup drill", params, request.tenants,
                      lambda env, target: drill_one(env, target, request.archive), lock=False)


def drill_one(env: Env, target: BackupTarget, archive: str | None = None) -> TenantResult:
    """Drill one tenant; the verification (ok or failed) is recorded in the state store."""
    start = state_store.now()
    result = _drill(env, target, archive)
    result.duration_seconds = state_store.now() - start
    env.store.record_verification(
        state_store.BackupVerification(target.slug, "mail", result.ok, state_store.now(), result.detail[:300])
    )
    return result


def _drill(env: Env, target: BackupTarget, archive: str | None) -> TenantResult:
    host = target.backup_host
    archives = list_archives(env, target) if archive is None or target.office_host else []
    if archive is None:
        latest = borg.latest(borg.of_component(archives, target.slug, "mail"))
        if latest is None:
            return TenantResult(target.slug, False, "no archive to drill")
        archive = latest.name
    made = env.ssh.run(host, ["mktemp", "-d", "/var/tmp/tno-drill.XXXXXXXX"])
    scratch = made.stdout.strip()
    if not made.ok or not scratch.startswith("/var/tmp/tno-drill."):
        return TenantResult(target.slug, False, f"cannot create a scratch dir: {tail(made.stderr)}")
    try:
        env.ssh.run(host, ["chown", naming.BACKUP_USER, scratch])
        extracted = run_borg(env, target, extract_args(target, archive), cwd=scratch, timeout=6 * 3600)
        if not extracted.ok:
            return TenantResult(target.slug, False, f"{archive}: extract failed: {tail(extracted.stderr)}",
                                data={"archive": archive})
        root = f"{scratch}/{naming.archive_path(target.slug)}"
        compared = env.ssh.run(
            host, ["python3", naming.MANIFEST_SCRIPT, "compare", f"{root}/manifest.json", f"{root}/mail"], timeout=3600
        )
        try:
            verdict = last_json(compared.stdout)
        except ValueError:
            return TenantResult(target.slug, False, f"{archive}: manifest check failed: {tail(compared.stderr)}")
        ok = compared.ok and bool(verdict.get("ok"))
        detail = f"{archive}: {verdict.get('checked')} messages checked, {verdict.get('missing')} missing or altered"
    finally:
        env.ssh.run(host, ["rm", "-rf", "--one-file-system", scratch], timeout=3600)
    data: dict[str, Any] = {"archive": archive, **verdict}
    if target.office_host:
        office_ok, office_detail, data["office"] = _office_contents(env, target, archives)
        ok, detail = ok and office_ok, f"{detail}; {office_detail}"
    return TenantResult(target.slug, ok, detail, data=data)


def _office_contents(env: Env, target: BackupTarget,
                     archives: list[borg.Archive]) -> tuple[bool, str, dict[str, Any]]:
    """The latest office archive lists the office host's coolwsd.xml (and what else it holds)."""
    latest = borg.latest(borg.of_component(archives, target.slug, "office"))
    if latest is None:
        return False, "no office archive", {}
    listed = run_borg(env, target, list_paths_args(target, latest.name))
    files = sorted(borg.parse_paths(listed.stdout)) if listed.ok else []
    ok = any(f.endswith(OFFICE_REQUIRED) for f in files)
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files) or tail(listed.stderr)
    return ok, f"office {latest.name}: {names}", {"archive": latest.name, "files": files}
