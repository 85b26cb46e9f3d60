"""`tnoctl drift`: is the fleet still what the inventory says? (check + diff, recorded per tenant)."""

from __future__ import annotations

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode


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
    from tnoctl.actions import deploy as deploy_action
    from tnoctl.actions import drift as drift_action
    from tnoctl.config.load import load_inventory
    from tnoctl.plan.deploy import plan_deploy
    from tnoctl.runbook.executors import redactor
    from tnoctl.state import audit
    from tnoctl.state.store import Store

    inventory = load_inventory(app.inventory, app.vault_password_file)
    plan = plan_deploy(inventory, tenants=tenants, action="deploy", check=True)
    argv = ["drift", *(f"--tenant={t}" for t in tenants)]
    with audit.operation(app.state_dir, "drift", argv, tenants=plan.tenants, hosts=plan.hosts) as op:
        ctx = deploy_action.RunContext(app.inventory, app.state_dir, op.id, app.vault_password_file,
                                       app.stderr, redactor(app))
        report, result, checked_at = drift_action.check(ctx, plan, inventory, Store(app.state_dir))
        op.artifacts = str(result.artifacts_dir)
        op.details = {"drifted_tenants": sorted({t.tenant for t in report.tenants if t.drift}),
                      "host_changes": report.host_changes, "failed_hosts": report.failed_hosts}
        _render(app, report, result, checked_at, as_json)
        if report.drifted or report.failed_hosts:
            op.fail(int(ExitCode.FAILED), "drift found" if report.drifted else "hosts not checked")
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


def _render(app: AppContext, report, result, checked_at: float, as_json: bool) -> None:
    if as_json:
        app.print_json(report.as_json(checked_at))
        return
    rows = [[t.tenant, t.component, t.host, "DRIFT" if t.drift else ("ok" if t.checked else "NOT CHECKED"),
             t.changed_tasks] for t in report.tenants]
    app.print_table(["tenant", "component", "host", "state", "changed tasks"], rows)
    for change in report.changes:
        item = f" [{change['item']}]" if change["item"] else ""
        app.console.print(f"  ~ {change['host']} / {change['owner']}: {change['task']}{item}", markup=False)
    if app.verbose:
        for change in result.changed_tasks:
            for line in change.diff.rstrip().splitlines():
                app.console.print(f"      {line}", markup=False)
    for failure in result.failed_tasks:
        kind = "unreachable" if failure.unreachable else "failed"
        app.err_console.print(f"{failure.host}: {kind}: {failure.task}: {failure.message}", markup=False)
    drifted = sum(1 for t in report.tenants if t.drift)
    app.info(f"{drifted} tenant component(s) drifted; {sum(report.host_changes.values())} change(s) pending; "
             f"artifacts: {result.artifacts_dir}")
