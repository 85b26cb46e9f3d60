"""`tnoctl lock list|release`: see and, when an operation died elsewhere, break per-tenant locks."""

from __future__ import annotations

import sys

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput
from tnoctl.state import locks


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
    from tnoctl.actions.lock import LockReleaseRequest, release

    def confirm(question: str) -> bool:
        if not _interactive():
            raise InvalidInput(f"refusing to release {tenant}'s lock without --yes in a non-interactive run")
        return click.confirm(question, default=False, err=True)

    request = LockReleaseRequest(tenant=tenant, confirm=None if (yes or app.assume_yes) else confirm)
    return render(app, release(app.env, request))
