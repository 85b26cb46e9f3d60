"""`backup run|list|verify|drill|prune`: per-tenant orchestration over SSH, results in the state store.

Why SSH and not a playbook per run: a backup is one command on one host (``tno-backup run SLUG``,
the same as the systemd timer), and Ansible's start-up would cost more than an incremental backup
(the benchmark goal is within 10% of raw borg). Deployment of the backup machinery itself is a
playbook (``backup setup``, role tno_backup). The caller holds the audit operation and the locks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnoctl.backup import borg, naming, office
from tnoctl.backup.remote import BackupSsh
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import (
    BackupTarget,
    check_args,
    extract_args,
    extract_stdout_args,
    info_args,
    list_paths_args,
    prune_args,
)
from tnoctl.state import store as state_store


@dataclass
class BackupEnv:
    """What every backup action needs: the loaded inventory, the state dir, vault access and SSH."""

    inventory: Any
    inventory_path: Path
    state_dir: Path
    vault_password_file: Path | None
    ssh: BackupSsh

    @property
    def store(self) -> state_store.Store:
        """The state store the exporter reads."""
        return state_store.Store(self.state_dir)


@dataclass
class Outcome:
    """Result of one action on one tenant (a row of the summary table)."""

    slug: str
    ok: bool
    detail: str = ""
    duration_seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


def passphrase(env: BackupEnv, slug: str) -> str:
    """The tenant's borg passphrase from the vault; registered for redaction before anything logs."""
    from tnoctl.config.vault import decrypt_value
    from tnoctl.state.redact import SECRETS

    if env.vault_password_file is None:
        raise InvalidInput("this needs the vault password (--vault-password-file or $TNO_VAULT_PASSWORD_FILE)")
    value = decrypt_value(env.inventory_path, env.vault_password_file, naming.passphrase_var(slug))
    SECRETS.add_all([value])
    return value


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object line of a command's output (the agent prints exactly one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON result in the output")


def run_one(env: BackupEnv, target: BackupTarget, tag: str | None = None,
            components: tuple[str, ...] | None = None) -> Outcome:
    """Back up the tenant now: ``tno-backup run KEY [--tag TAG]`` on each component's host, mail first.

    ``tag`` (e.g. ``pre-upgrade-<op-id>``) names a safety snapshot ``<slug>[.office].tag-<tag>-<time>``
    that the scheduled retention never counts (plan.prune_args). Each component's result, failure
    too, is recorded in the state store; the outcome is ok only when every component is.
    """
    try:
        naming.check_tag(tag) if tag is not None else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    parts = [_run_component(env, target, c, tag) for c in components or target.components]
    ok = all(p.ok for p in parts)
    finished = state_store.now()
    duration = sum(p.duration_seconds for p in parts)
    env.store.record_operation(state_store.OperationRecord(target.slug, "backup", ok, finished, duration))
    data = dict(parts[0].data)
    data.update({p.data["component"]: p.data for p in parts[1:]})
    detail = "; ".join(p.detail for p in parts if p.detail)
    return Outcome(target.slug, ok, detail, duration, data)


def _run_component(env: BackupEnv, target: BackupTarget, component: str, tag: str | None) -> Outcome:
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
    label = f"{component}: {detail}" if detail else str(data.get("archive", ""))
    return Outcome(target.slug, ok, label, duration, data)


def _borg(env: BackupEnv, target: BackupTarget, args: list[str], cwd: str | None = None, timeout: float = 3600):
    return env.ssh.borg_on_backup_host(target.backup_host, passphrase(env, target.slug), args, timeout, cwd)


def list_archives(env: BackupEnv, target: BackupTarget) -> list[borg.Archive]:
    """Archives of the tenant with their sizes (oldest first), read on the backup host."""
    result = _borg(env, target, info_args(target))
    if not result.ok:
        raise OperationFailed(f"{target.slug}: borg info failed: {_tail(result.stderr)}")
    return borg.parse_info(result.stdout)


def verify(env: BackupEnv, target: BackupTarget) -> Outcome:
    """borg repository and archive checks on the backup host."""
    start = state_store.now()
    for args in check_args(target):
        result = _borg(env, target, args, timeout=6 * 3600)
        if not result.ok:
            return Outcome(target.slug, False, f"borg {' '.join(args[:2])}: {_tail(result.stderr)}",
                           state_store.now() - start)
    return Outcome(target.slug, True, "repository and archives consistent", state_store.now() - start)


def drill(env: BackupEnv, target: BackupTarget, archive: str | None = None) -> Outcome:
    """Restore test of each component the tenant has, on the backup host; never touches live data.

    Mail: the latest (or ``archive``) mail archive is extracted into a scratch dir and compared
    with its manifest. Office: ``coolwsd.xml`` of the latest (or ``archive``, for an office-only
    tenant) office archive is restored and checked (backup/office.py). One verification per
    component (ok or failed) goes to the state store: an office-only tenant is verified as office.
    """
    start = state_store.now()
    archives = list_archives(env, target) if archive is None or len(target.components) > 1 else []
    parts: list[tuple[str, Outcome]] = []
    for component in target.components:
        chosen = archive if archive and component == target.components[0] else None
        part = (_drill_mail if component == "mail" else _drill_office)(env, target, chosen, archives)
        env.store.record_verification(
            state_store.BackupVerification(target.slug, component, part.ok, state_store.now(), part.detail[:300]))
        parts.append((component, part))
    ok = all(p.ok for _c, p in parts)
    detail = "; ".join(p.detail for _c, p in parts)
    data = dict(parts[0][1].data)
    data.update({c: p.data for c, p in parts[1:]})
    return Outcome(target.slug, ok, detail, state_store.now() - start, data)


def _drill_mail(env: BackupEnv, target: BackupTarget, archive: str | None,
                archives: list[borg.Archive]) -> Outcome:
    host = target.backup_host
    if archive is None:
        latest = borg.latest(borg.of_component(archives, target.slug, "mail"))
        if latest is None:
            return Outcome(target.slug, False, "no mail archive to drill")
        archive = latest.name
    made = env.ssh.run(host, ["mktemp", "-d", "/var/tmp/tno-drill.XXXXXXXX"])
    scratch = made.stdout.strip()
    if not made.ok or not scratch.startswith("/var/tmp/tno-drill."):
        return Outcome(target.slug, False, f"cannot create a scratch dir: {_tail(made.stderr)}")
    try:
        env.ssh.run(host, ["chown", naming.BACKUP_USER, scratch])
        extracted = _borg(env, target, extract_args(target, archive), cwd=scratch, timeout=6 * 3600)
        if not extracted.ok:
            return Outcome(target.slug, False, f"{archive}: extract failed: {_tail(extracted.stderr)}",
                           data={"archive": archive})
        root = f"{scratch}/{naming.archive_path(target.slug)}"
        compared = env.ssh.run(
            host, ["python3", naming.MANIFEST_SCRIPT, "compare", f"{root}/manifest.json", f"{root}/mail"], timeout=3600
        )
        try:
            verdict = last_json(compared.stdout)
        except ValueError:
            return Outcome(target.slug, False, f"{archive}: manifest check failed: {_tail(compared.stderr)}")
        ok = compared.ok and bool(verdict.get("ok"))
        detail = f"{archive}: {verdict.get('checked')} messages checked, {verdict.get('missing')} missing or altered"
    finally:
        env.ssh.run(host, ["rm", "-rf", "--one-file-system", scratch], timeout=3600)
    return Outcome(target.slug, ok, detail, data={"archive": archive, **verdict})


def _drill_office(env: BackupEnv, target: BackupTarget, archive: str | None,
                  archives: list[borg.Archive]) -> Outcome:
    """Restore the office archive's coolwsd.xml (borg extract --stdout) and check it; list the archive's files."""
    if archive is None:
        latest = borg.latest(borg.of_component(archives, target.slug, "office"))
        if latest is None:
            return Outcome(target.slug, False, "no office archive", data={"component": "office"})
        archive = latest.name
    listed = _borg(env, target, list_paths_args(target, archive))
    files = sorted(borg.parse_paths(listed.stdout)) if listed.ok else []
    data = {"component": "office", "archive": archive, "files": files}
    if not listed.ok:
        return Outcome(target.slug, False, f"office {archive}: list failed: {_tail(listed.stderr)}", data=data)
    restored = _borg(env, target, extract_stdout_args(target, archive, office.REQUIRED), timeout=600)
    if not restored.ok:
        return Outcome(target.slug, False, f"office {archive}: {office.REQUIRED} not restored: "
                                           f"{_tail(restored.stderr)}", data=data)
    ok, detail = office.check_config(restored.stdout)
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files)
    return Outcome(target.slug, ok, f"office {archive}: {detail}; files: {names}", data=data)


def prune(env: BackupEnv, target: BackupTarget) -> Outcome:
    """Prune to the retention and compact, on the backup host (mail hosts cannot: append-only)."""
    start = state_store.now()
    for args in prune_args(target):
        result = _borg(env, target, args, timeout=6 * 3600)
        if not result.ok:
            return Outcome(target.slug, False, f"borg {args[0]}: {_tail(result.stderr)}", state_store.now() - start)
    kept = ", ".join(f"{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items()))
    return Outcome(target.slug, True, f"pruned ({kept}) and compacted", state_store.now() - start)


def transactions(env: BackupEnv, target: BackupTarget) -> list[tuple[int, str]]:
    """The repository's append-only ``transactions`` log: (id, UTC time), oldest first."""
    result = env.ssh.run(target.backup_host, _as_owner("python3", naming.ROLLBACK_SCRIPT, "transactions", target.repo))
    try:
        return [(int(t), str(u)) for t, u in last_json(result.stdout)["transactions"]]
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(f"{target.slug}: cannot read the transactions log: {_tail(result.stderr)}") from None


def recover_deleted(env: BackupEnv, target: BackupTarget, keep: int) -> Outcome:
    """Undo what was appended after transaction ``keep`` (an attacker's delete/prune), on the backup host.

    1. rollback.py moves later segments and index files to a quarantine dir, under borg's lock;
    2. ``borg check --repository-only`` rebuilds the index from the remaining segments and checks them;
    3. the clients' borg cache and security records of this repository (backup host owner, mail and
       office hosts) are dropped: they remember the newer manifest and would refuse the rolled-back
       repository as a replay attack. Their next run re-reads files once (the files cache is gone).
    """
    start = state_store.now()
    quarantine = f"{naming.QUARANTINE_ROOT}/{target.slug}/{state_store.now():.0f}"
    argv = _as_owner("python3", naming.ROLLBACK_SCRIPT, "rollback", target.repo, str(keep), quarantine)
    result = env.ssh.run(target.backup_host, argv, timeout=3600)
    try:
        done = last_json(result.stdout)
    except ValueError:
        return Outcome(target.slug, False, f"rollback failed: {_tail(result.stderr)}", state_store.now() - start)
    checked = _borg(env, target, ["check", "--repository-only", target.repo], timeout=6 * 3600)
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
              f"borg check {'ok' if checked.ok else 'FAILED: ' + _tail(checked.stderr)}")
    if stale:
        detail += f"; clear borg cache/security of repo {repo_id} by hand on {', '.join(stale)}"
    data = {"kept": keep, "dropped_transactions": dropped, "quarantine": quarantine, "stale_hosts": stale}
    return Outcome(target.slug, checked.ok, detail, state_store.now() - start, data)


def _as_owner(*argv: str) -> list[str]:
    return ["runuser", "-u", naming.BACKUP_USER, "--", *argv]


def _tail(text: str, lines: int = 2) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[:300] or "(no output)"


SUMMARY_COLUMNS = ["tenant", "result", "duration", "detail"]


def summary_rows(outcomes: list[Outcome]) -> list[list[object]]:
    """Final summary table rows."""
    return [[o.slug, "ok" if o.ok else "FAILED", f"{o.duration_seconds:.1f}s", o.detail] for o in outcomes]
