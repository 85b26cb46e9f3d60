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

from tnoctl.backup import borg, naming
from tnoctl.backup.remote import BackupSsh
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, check_args, extract_args, info_args, prune_args
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


def run_one(env: BackupEnv, target: BackupTarget) -> Outcome:
    """``tno-backup run SLUG`` on the mail host; record the result (failure too) in the state store."""
    now = state_store.now()
    try:
        result = env.ssh.run(target.mail_host, [naming.AGENT, "run", target.slug], timeout=6 * 3600)
        data = last_json(result.stdout)
        ok, detail = bool(data.get("ok")) and result.ok, str(data.get("detail", ""))
    except OperationFailed as exc:  # mail host unreachable: a failed backup all the same
        data, ok, detail = {"finished_at": now, "duration_seconds": state_store.now() - now}, False, exc.message
    except ValueError:
        data, ok = {"finished_at": now}, False
        detail = f"unexpected output from {naming.AGENT} (rc {result.rc}): {result.stderr.strip()[-200:]}"
    duration = float(data.get("duration_seconds", 0.0))
    record = state_store.BackupResult(
        tenant=target.slug,
        component="mail",
        ok=ok,
        finished_at=float(data.get("finished_at", now)),
        duration_seconds=duration,
        original_bytes=data.get("original_bytes") if ok else None,
        compressed_bytes=data.get("compressed_bytes") if ok else None,
        deduplicated_bytes=data.get("deduplicated_bytes") if ok else None,
        detail=detail[:300],
    )
    env.store.record_backup(record)
    env.store.record_operation(
        state_store.OperationRecord(target.slug, "backup", ok, record.finished_at, duration)
    )
    return Outcome(target.slug, ok, detail or str(data.get("archive", "")), duration, data)


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
    """Extract the latest archive into a scratch dir on the backup host and check it against its manifest.

    Never touches a live mailbox. Records a verification (ok or failed) in the state store.
    """
    start = state_store.now()
    outcome = _drill(env, target, archive)
    outcome.duration_seconds = state_store.now() - start
    env.store.record_verification(
        state_store.BackupVerification(target.slug, "mail", outcome.ok, state_store.now(), outcome.detail[:300])
    )
    return outcome


def _drill(env: BackupEnv, target: BackupTarget, archive: str | None) -> Outcome:
    host = target.backup_host
    if archive is None:
        latest = borg.latest(list_archives(env, target))
        if latest is None:
            return Outcome(target.slug, False, "no archive to drill")
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
        return Outcome(target.slug, ok, detail, data={"archive": archive, **verdict})
    finally:
        env.ssh.run(host, ["rm", "-rf", "--one-file-system", scratch], timeout=3600)


def prune(env: BackupEnv, target: BackupTarget) -> Outcome:
    """Prune to the retention and compact, on the backup host (mail hosts cannot: append-only)."""
    start = state_store.now()
    for args in prune_args(target):
        result = _borg(env, target, args, timeout=6 * 3600)
        if not result.ok:
            return Outcome(target.slug, False, f"borg {args[0]}: {_tail(result.stderr)}", state_store.now() - start)
    kept = ", ".join(f"{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items()))
    return Outcome(target.slug, True, f"pruned ({kept}) and compacted", state_store.now() - start)


def _tail(text: str, lines: int = 2) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[:300] or "(no output)"


SUMMARY_COLUMNS = ["tenant", "result", "duration", "detail"]


def summary_rows(outcomes: list[Outcome]) -> list[list[object]]:
    """Final summary table rows."""
    return [[o.slug, "ok" if o.ok else "FAILED", f"{o.duration_seconds:.1f}s", o.detail] for o in outcomes]
