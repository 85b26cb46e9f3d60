"""`tnoctl plan` and `tnoctl deploy`: converge hosts to the inventory (check+diff first).

Thin verbs: parse, confirm (deploy asks after its preview, on stderr), call one action
(:mod:`tnoctl.actions.deploy`), render its Outcome.
"""

from __future__ import annotations

import click

from tnoctl.actions import deploy as deploy_action
from tnoctl.cli.confirm import render, require_yes
from tnoctl.cli.context import AppContext

SELECT_HELP_TENANT = "Only the hosts serving this tenant (repeatable)."
SELECT_HELP_HOST = "Only this host (repeatable)."


@click.command("plan")
@click.option("--tenant", "-t", "tenants", multiple=True, help=SELECT_HELP_TENANT)
@click.option("--host", "-H", "hosts", multiple=True, help=SELECT_HELP_HOST)
@click.option(
    "--exit-zero", is_flag=True, help="Exit 0 even when changes are pending (default: 1, like terraform's "
    "-detailed-exitcode)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: {hosts, pending, changes, artifacts}.")
@click.pass_obj
def plan(app: AppContext, tenants: tuple[str, ...], hosts: tuple[str, ...], exit_zero: bool, as_json: bool) -> int:
    """Show what a deploy would change (Ansible check + diff), per host and tenant.

    Exit 0 when nothing would change, 1 when changes are pending (unless --exit-zero) or a host
    failed. Secrets are masked in diffs. --json prints `{hosts: [..], pending: N, changes: [{host,
    owner, task, item, diff}], artifacts: DIR}` (owner: a tenant slug or `platform`).

    \b
    Example:
      tnoctl plan --tenant givors
    """
    request = deploy_action.PlanRequest(tenants=tenants, hosts=hosts, exit_zero=exit_zero)
    return render(app, deploy_action.plan(app.env, request), as_json=as_json)


@click.command("deploy")
@click.option("--tenant", "-t", "tenants", multiple=True, help=SELECT_HELP_TENANT)
@click.option("--host", "-H", "hosts", multiple=True, help=SELECT_HELP_HOST)
@click.option("--yes", "-y", is_flag=True, help="Do not show the plan and ask; apply directly.")
@click.option("--ignore-windows", is_flag=True, help="Apply even if a change would restart a tenant-facing "
              "service (coolwsd, OpenDKIM) outside a tenant's maintenance window (default: refuse, exit 4).")
@click.pass_obj
def deploy(app: AppContext, tenants: tuple[str, ...], hosts: tuple[str, ...], yes: bool,
           ignore_windows: bool) -> int:
    """Converge the selected hosts (default: the whole fleet) to the inventory.

    Takes the tenants' locks, shows the plan (check + diff) and asks unless --yes, applies,
    prints a summary (host, tenants, ok, changed, failed, unreachable, duration) and records
    the operation in the audit log. Then, when platform.yml names a DNS server with its TSIG key,
    publishes the deployed tenants' DNS records (MX, SPF, DKIM ...: what `dns publish` does). Exit 1
    if any host failed or was unreachable, or a record could not be published (retry: tnoctl dns
    publish --yes). Exit 4
    (nothing applied) when a change would restart a tenant-facing service outside the window of a
    tenant it serves (reloads are allowed), unless --ignore-windows.

    \b
    Example:
      tnoctl deploy --tenant givors --yes
    """
    require_yes("deploy", yes)

    def confirm(preview: deploy_action.Preview) -> bool:
        for line in preview.lines(diffs=app.verbose >= 0):
            app.stdout.write(line + "\n")
        if preview.pending == 0:
            app.info("nothing to change")
        return click.confirm(f"Apply to {len(preview.hosts)} host(s)?", default=False, err=True)

    request = deploy_action.DeployRequest(tenants=tenants, hosts=hosts, confirm=None if yes else confirm,
                                          ignore_windows=ignore_windows)
    return render(app, deploy_action.run(app.env, request))
