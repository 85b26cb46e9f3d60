"""`tnoctl lock list|release`: see and, when an operation died elsewhere, break per-tenant locks."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import render, require_yes
from tnoctl.cli.context import AppContext


@click.group()
def lock() -> None:
    """Per-tenant operation locks (one operation per commune at a time).

    \b
    Example:
      tnoctl lock list
      tnoctl lock release givors --yes
    """


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
    from tnoctl.actions.reports import lock_list

    outcome = lock_list(app.env)
    if as_json:
        app.print_json(outcome.data["locks"])
        return
    render(app, outcome)


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

    yes = yes or app.assume_yes
    require_yes("lock release", yes)  # up front, locked or not: the same answer every time

    def confirm(question: str) -> bool:
        return click.confirm(question, default=False, err=True)

    request = LockReleaseRequest(tenant=tenant, confirm=None if yes else confirm)
    return render(app, release(app.env, request))
