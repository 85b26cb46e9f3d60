"""`tnoctl lock list|release`: see and, when an operation died elsewhere, break per-tenant locks."""

from __future__ import annotations

import sys

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput, Refused
from tnoctl.state import audit, current_host, locks


@click.group()
def lock() -> None:
    """Per-tenant operation locks (one operation per commune at a time).

    \b
    Example:
      tnoctl lock list
      tnoctl lock release givors --yes
    """


def _row(status: locks.LockStatus) -> dict:
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


@lock.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_cmd(app: AppContext, as_json: bool) -> None:
    """List held locks: tenant, state (held, stale, unreadable), verb, operator, pid, host, since.

    A `stale` lock belongs to a dead process on this host; the next operation recovers it.

    \b
    Example:
      tnoctl lock list --json
    """
    rows = [_row(status) for status in locks.list_locks(app.state_dir)]
    if as_json:
        app.print_json(rows)
        return
    if not rows:
        app.info("no tenant is locked")
        return
    columns = ["tenant", "state", "verb", "operator", "pid", "host", "since", "operation_id"]
    app.print_table(columns, [[row[c] for c in columns] for row in rows])


def _interactive() -> bool:
    """True when a human can answer a confirmation prompt."""
    return sys.stdin is not None and sys.stdin.isatty()


@lock.command("release")
@click.argument("tenant")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required if not interactive).")
@click.pass_obj
def release_cmd(app: AppContext, tenant: str, yes: bool) -> int:
    """Remove TENANT's lock whoever holds it, when the operation holding it is dead.

    Use it only after checking that no operation runs on TENANT (the lock names its pid and host).
    The release is recorded in the audit log.

    \b
    Example:
      tnoctl lock release givors --yes
    """
    path = locks.lock_path(app.state_dir, tenant)  # validates the slug before anything is recorded
    argv = ["lock", "release", tenant, *(["--yes"] if yes else [])]
    with audit.operation(app.state_dir, "lock release", argv, tenants=[tenant]) as op:
        status = next((s for s in locks.list_locks(app.state_dir) if s.tenant == tenant), None)
        if status is None:
            op.details["released"] = False
            app.info(f"tenant {tenant} is not locked; nothing to release")
            return 0
        info = status.info
        holder = f"{info.verb} (pid {info.pid} on {info.host}, operator {info.owner})" if info else str(path)
        if info and status.state == "held" and info.host == current_host():
            app.warn(f"the holder of {tenant}'s lock, pid {info.pid}, is still running on this host")
        if not (yes or app.assume_yes):
            if not _interactive():
                raise InvalidInput(
                    f"refusing to release {tenant}'s lock without --yes in a non-interactive run"
                )
            if not click.confirm(f"Release {tenant}'s lock held by {holder}?", default=False, err=True):
                raise Refused(f"{tenant}'s lock was not released (not confirmed)")
        released = locks.release(app.state_dir, tenant)
        op.details["released"] = released is not None
        if info is not None:
            op.details["holder"] = {"verb": info.verb, "pid": info.pid, "host": info.host,
                                    "operator": info.owner, "operation_id": info.operation_id}
        app.info(f"released {tenant}'s lock held by {holder}" if released else f"{tenant} was not locked")
    return 0
