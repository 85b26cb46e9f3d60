"""`tnoctl drift`: is the fleet still what the inventory says? (check + diff, recorded per tenant)."""

from __future__ import annotations

import click

from tnoctl.cli.confirm import render
from tnoctl.cli.context import AppContext


@click.command("drift")
@click.option("--tenant", "-t", "tenants", multiple=True, help="Only the hosts of this tenant (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def drift(app: AppContext, tenants: tuple[str, ...], as_json: bool) -> int:
    """Detect configuration drift: one check+diff run of a deploy over the fleet, hosts in parallel.

    Changed tasks are attributed to hosts, tenants and components; each tenant's drift (0/1),
    changed-task count and check time go to the state store (exporter metric tnoctl_config_drift).
    Exit 1 when anything drifted or a host could not be checked. Fix drift with `tnoctl deploy`.

    \b
    Example:
      tnoctl drift --tenant givors --json
    """
    from tnoctl.actions import drift as drift_action

    outcome = drift_action.run(app.env, drift_action.DriftRequest(tenants=tenants, diffs=app.verbose > 0))
    return render(app, outcome, as_json=as_json)
