"""`tnoctl history`: what was done, by whom, on which tenants, with which result (the audit log)."""

from __future__ import annotations

import click

from tnoctl.cli.context import AppContext
from tnoctl.state import audit


def _duration(value: object) -> str:
    """``12.3s`` / ``4m05s`` for the table; empty when unknown."""
    if not isinstance(value, int | float):
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"


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
    found = audit.read_log(app.state_dir, tenant=tenant, limit=limit or None)
    if found.skipped:
        app.warn(f"{audit.audit_path(app.state_dir)}: skipped {found.skipped} unreadable line(s)")
    if as_json:
        app.print_json(found.records)
        return
    if not found.records:
        app.info("no recorded operation" + (f" for tenant {tenant}" if tenant else ""))
        return
    columns = ["time", "id", "operator", "verb", "tenants", "result", "duration"]
    rows = [
        [
            rec.get("time"),
            rec.get("id"),
            rec.get("operator"),
            rec.get("verb"),
            ",".join(str(t) for t in rec.get("tenants") or []),
            rec.get("result"),
            _duration(rec.get("duration_seconds")),
        ]
        for rec in found.records
    ]
    app.print_table(columns, rows)
