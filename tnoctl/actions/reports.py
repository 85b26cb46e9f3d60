"""Read-only verbs as actions: history, lock list, status, tenant show, inventory validate.

They change nothing (no lock, no audit record) but live here so the CLI and runbook ``tnoctl`` steps
(through :mod:`tnoctl.actions.registry`) share one implementation and one environment (``env.ssh``
for the queue probe, ``env.store`` for backup freshness). Each returns an :class:`Outcome` whose
``data`` is the verb's ``--json`` document and whose rows/lines are its human output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome
from tnoctl.errors import ExitCode
from tnoctl.probes.base import ProbeResult
from tnoctl.state import audit, locks

HISTORY_COLUMNS = ["time", "id", "operator", "verb", "tenants", "result", "duration"]
LOCK_COLUMNS = ["tenant", "state", "verb", "operator", "pid", "host", "since", "operation_id"]


def _duration(value: object) -> str:
    """``12.3s`` / ``4m05s`` for the table; empty when unknown."""
    if not isinstance(value, int | float):
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"


def history(env: Env, tenant: str | None = None, limit: int = 50) -> Outcome:
    """The last ``limit`` audit records (0: all) of ``tenant``; ``data["records"]`` is the JSON list."""
    found = audit.read_log(env.state_dir, tenant=tenant, limit=limit or None)
    if found.skipped:
        env.output.warn(f"{audit.audit_path(env.state_dir)}: skipped {found.skipped} unreadable line(s)")
    rows = [[rec.get("time"), rec.get("id"), rec.get("operator"), rec.get("verb"),
             ",".join(str(t) for t in rec.get("tenants") or []), rec.get("result"),
             _duration(rec.get("duration_seconds"))] for rec in found.records]
    message = "" if rows else "no recorded operation" + (f" for tenant {tenant}" if tenant else "")
    return Outcome(columns=HISTORY_COLUMNS if rows else [], rows=rows, data={"records": found.records},
                   message=message)


def lock_row(status: locks.LockStatus) -> dict[str, Any]:
    """One lock as JSON (and the source of the table row)."""
    info = status.info
    return {
        "tenant": status.tenant,
        "state": status.state,
        "verb": info.verb if info else None,
        "operator": info.owner if info else None,
        "pid": info.pid if info else None,
        "host": info.host if info else None,
        "since": info.started if info else None,
        "operation_id": info.operation_id if info else None,
        "path": str(status.path),
        "error": status.error,
    }


def lock_list(env: Env) -> Outcome:
    """Every lock of the state dir; ``data["locks"]`` is the JSON list."""
    found = [lock_row(status) for status in locks.list_locks(env.state_dir)]
    return Outcome(columns=LOCK_COLUMNS if found else [], rows=[[r[c] for c in LOCK_COLUMNS] for r in found],
                   data={"locks": found}, message="" if found else "no tenant is locked")


@dataclass(frozen=True)
class StatusRequest:
    """`tnoctl status`: selection and probe options."""

    tenants: tuple[str, ...] = ()
    timeout: float = 10.0
    parallelism: int = 16
    ca_file: Path | None = None
    roundtrip: bool = False
    queues: bool = True


def gather(env: Env, request: StatusRequest) -> list[ProbeResult]:
    """Build every probe of the selection and run them (the one I/O step of `status`)."""
    from tnoctl.probes import wiring
    from tnoctl.probes.runner import run_probes
    from tnoctl.probes.targets import ProbeOptions

    inv = env.inventory
    for slug in request.tenants:
        inv.tenant(slug)  # InvalidInput (exit 2) on an unknown tenant
    opts = ProbeOptions(request.ca_file or wiring.default_ca_file(env.inventory_path), request.timeout,
                        request.roundtrip, inv.platform.tno_office_version)
    probes = wiring.all_probes(inv, opts, list(request.tenants) or None,
                               wiring.secret_lookup(env.inventory_path, env.vault_password_file),
                               wiring.ssh_runner(env.ssh) if request.queues else None, env.store)
    return run_probes(probes, request.parallelism)


def status(env: Env, request: StatusRequest) -> Outcome:
    """Pull the hosts' backup results, probe the selection once, concurrently; exit 1 when anything is critical."""
    from tnoctl.probes import report

    if request.queues:  # SSH allowed: first pull the hosts' timer-run backups and drills (backup_sync.py)
        from tnoctl.actions.backup_sync import sync_quietly

        sync_quietly(env, request.tenants)
    results = gather(env, request)
    rows = report.fold(results)
    columns, table = report.table(rows)
    return Outcome(exit_code=ExitCode(report.exit_code(rows)), columns=columns, rows=list(table),
                   data=report.as_json(rows, results))


def tenant_show(env: Env, slug: str) -> Outcome:
    """One tenant as Ansible sees it (vault variable names only); ``data`` is the JSON view."""
    from tnoctl.config.ansible_view import tenant_view

    inv = env.inventory
    t = inv.tenant(slug)
    view = tenant_view(t, inv.platform.tno_backup_retention.model_dump())
    view.update(maintenance_window=t.maintenance_window, contacts=[c.model_dump() for c in t.contacts])
    lines = []
    for key in ("slug", "name", "insee", "domains", "services", "placement", "pilot", "maintenance_window",
                "backup"):
        value = view[key]
        shown = ", ".join(value) if isinstance(value, list) else (
            " ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value)
        lines.append(f"{key + ':':20}{shown}")
    lines.append(f"{'wopi_hosts:':20}{', '.join(view['office']['wopi_hosts'])}")
    rows = [[b["address"], b["name"], b["quota"], b["password_vault"]] for b in view["mailboxes"]]
    return Outcome(columns=["address", "name", "quota", "password (vault variable)"], rows=rows, data=view,
                   lines=lines)


def inventory_validate(env: Env) -> Outcome:
    """Validate every file (cached per tenant file); InvalidInput (exit 2) lists every `file:field: message`."""
    from tnoctl.config.load import validate_inventory

    where = str(env.inventory_path)
    found = validate_inventory(env.inventory_path, env.vault_password_file, cache_dir=env.state_dir / "cache")
    note = "" if found.vault_checked else " (vault names not checked: no readable vault)"
    return Outcome(data={"inventory": where, "valid": True, "hosts": found.hosts, "tenants": found.tenants,
                         "errors": [], "vault_checked": found.vault_checked},
                   lines=[f"inventory {where} is valid: {found.hosts} hosts, {found.tenants} tenants{note}"])
