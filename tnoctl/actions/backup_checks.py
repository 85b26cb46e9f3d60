"""`backup verify` and `backup drill`: prove a tenant's backups can be read back. No tenant lock.

Both read on the backup host with the passphrase from the vault, so they also prove the vault copy
of the passphrase opens the repository (what a disaster recovery depends on). A drill extracts the
latest mail archive into a scratch dir and checks it against its manifest, and restores the office
archive's coolwsd.xml and checks it; it never touches live data, and records one verification per
component (alert TnoBackupUnverified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tnoctl.actions.backup import TenantResult, last_json, list_archives, per_tenant, run_borg, tail
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
from tnoctl.backup import borg, naming, office
from tnoctl.errors import InvalidInput
from tnoctl.plan.backup import BackupTarget, check_args, extract_args, extract_stdout_args, list_paths_args
from tnoctl.state import store as state_store


@dataclass(frozen=True)
class VerifyRequest:
    """``backup verify``: the tenants (default: every tenant)."""

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
    """Restore test of each component the tenant has, on the backup host; never touches live data.

    Mail: the latest (or ``archive``) mail archive is extracted into a scratch dir and compared
    with its manifest. Office: ``coolwsd.xml`` of the latest (or ``archive``, for an office-only
    tenant) office archive is restored and checked (backup/office.py). One verification per
    component (ok or failed) goes to the state store: an office-only tenant is verified as office.
    """
    start = state_store.now()
    archives = list_archives(env, target) if archive is None or len(target.components) > 1 else []
    parts: list[tuple[str, TenantResult]] = []
    for component in target.components:
        chosen = archive if archive and component == target.components[0] else None
        part = (_drill_mail if component == "mail" else _drill_office)(env, target, chosen, archives)
        env.store.record_verification(
            state_store.BackupVerification(target.slug, component, part.ok, state_store.now(), part.detail[:300]))
        parts.append((component, part))
    data = dict(parts[0][1].data)
    data.update({c: p.data for c, p in parts[1:]})
    return TenantResult(target.slug, all(p.ok for _c, p in parts), "; ".join(p.detail for _c, p in parts),
                        state_store.now() - start, data)


def _drill_mail(env: Env, target: BackupTarget, archive: str | None, archives: list[borg.Archive]) -> TenantResult:
    host = target.backup_host
    if archive is None:
        latest = borg.latest(borg.of_component(archives, target.slug, "mail"))
        if latest is None:
            return TenantResult(target.slug, False, "no mail archive to drill")
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
    return TenantResult(target.slug, ok, detail, data=data)


def _drill_office(env: Env, target: BackupTarget, archive: str | None,
                  archives: list[borg.Archive]) -> TenantResult:
    """Restore the office archive's coolwsd.xml (borg extract --stdout) and check it; list the archive's files."""
    if archive is None:
        latest = borg.latest(borg.of_component(archives, target.slug, "office"))
        if latest is None:
            return TenantResult(target.slug, False, "no office archive", data={"component": "office"})
        archive = latest.name
    listed = run_borg(env, target, list_paths_args(target, archive))
    files = sorted(borg.parse_paths(listed.stdout)) if listed.ok else []
    data: dict[str, Any] = {"component": "office", "archive": archive, "files": files}
    if not listed.ok:
        return TenantResult(target.slug, False, f"office {archive}: list failed: {tail(listed.stderr)}", data=data)
    required = office.required_path(target.slug)
    restored = run_borg(env, target, extract_stdout_args(target, archive, required), timeout=600)
    if not restored.ok:
        return TenantResult(target.slug, False,
                            f"office {archive}: {required} not restored: {tail(restored.stderr)}", data=data)
    ok, detail = office.check_config(restored.stdout)
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files)
    return TenantResult(target.slug, ok, f"office {archive}: {detail}; files: {names}", data=data)
