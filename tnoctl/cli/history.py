"""`tnoctl history`: what was done, by whom, on which tenants, with which result (the audit log)."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext


@click.command()
@click.option("--tenant", "-t", default=None, help="Only operations that touched this tenant.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show the last N operations (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: the audit records.")
@click.pass_obj
def history(app: AppContext, tenant: str | None, limit: int, as_json: bool) -> None:
    """Show past operations from the audit log, oldest first (the most recent at the bottom).

    \b
    Example:
      tnoctl history --tenant givors --limit 10
      tnoctl history --json | jq '.[] | select(.result != "ok")'
    """
    from tnoctl.actions.reports import history as history_report

    outcome = history_report(app.env, tenant, limit)
    if as_json:
        app.print_json(outcome.data["records"])
        return
    render(app, outcome)
