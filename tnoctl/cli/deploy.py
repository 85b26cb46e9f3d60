"""`tnoctl plan` and `tnoctl deploy`: converge hosts to the inventory (check+diff first)."""

from __future__ import annotations

import sys

import click

from tnoctl.actions import deploy as deploy_action
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput
from tnoctl.plan.deploy import DeployPlan, plan_deploy

SELECT_HELP_TENANT = "Only the hosts serving this tenant (repeatable)."
SELECT_HELP_HOST = "Only this host (repeatable)."


def _load(app: AppContext):
    from tnoctl.config import load_inventory

    return load_inventory(app.inventory)


def _redactor(app: AppContext):
    from tnoctl.config.vault import secret_scrubber

    return secret_scrubber(app.inventory, app.vault_password_file)


def _context(app: AppContext, run_id: str, redact) -> deploy_action.RunContext:
    return deploy_action.RunContext(
        inventory=app.inventory,
        state_dir=app.state_dir,
        run_id=run_id,
        vault_password_file=app.vault_password_file,
        progress_stream=app.stderr,
        redact=redact,
    )


def _render_changes(app: AppContext, plan: DeployPlan, result, inventory) -> int:
    grouped = deploy_action.attribute_changes(plan, result.changed_tasks, deploy_action.tenant_keys(inventory.tenants))
    count = 0
    for host in plan.hosts:
        per_owner = grouped.get(host, {})
        if not per_owner:
            app.console.print(f"[bold]{host}[/bold]: no changes")
            continue
        for owner, changes in sorted(per_owner.items()):
            app.console.print(f"[bold]{host}[/bold] / {owner}: {len(changes)} change(s)")
            for change in changes:
                count += 1
                label = f" [{change.item}]" if change.item else ""
                app.console.print(f"  ~ {change.task}{label}")
                if change.diff and app.verbose >= 0:
                    for line in change.diff.rstrip().splitlines():
                        app.console.print(f"      {line}", markup=False)
    return count


def _render_summary(app: AppContext, plan: DeployPlan, result) -> None:
    app.print_table(deploy_action.SUMMARY_COLUMNS, deploy_action.summary_rows(plan, result))
    for failure in result.failed_tasks:
        kind = "unreachable" if failure.unreachable else "failed"
        app.err_console.print(f"{failure.host}: {kind}: {failure.task}: {failure.message}", markup=False)
    app.info(f"artifacts: {result.artifacts_dir}")


def _selection_plan(app: AppContext, inventory, tenants, hosts, check: bool) -> DeployPlan:
    return plan_deploy(inventory, tenants=tenants, hosts=hosts, action="deploy", check=check)


@click.command("plan")
@click.option("--tenant", "-t", "tenants", multiple=True, help=SELECT_HELP_TENANT)
@click.option("--host", "-H", "hosts", multiple=True, help=SELECT_HELP_HOST)
@click.option(
    "--exit-zero", is_flag=True, help="Exit 0 even when changes are pending (default: 1, like terraform's "
    "-detailed-exitcode)."
)
@click.pass_obj
def plan(app: AppContext, tenants: tuple[str, ...], hosts: tuple[str, ...], exit_zero: bool) -> int:
    """Show what a deploy would change (Ansible check + diff), per host and tenant.

    Exit 0 when nothing would change, 1 when changes are pending (unless --exit-zero).
    Secrets are masked in diffs.

    \b
    Example:
      tnoctl plan --tenant givors
    """
    from tnoctl.state import audit

    inventory = _load(app)
    deploy_plan = _selection_plan(app, inventory, tenants, hosts, check=True)
    with audit.operation(
        app.state_dir, "plan", sys.argv[1:], tenants=list(deploy_plan.tenants), hosts=list(deploy_plan.hosts)
    ) as op:
        ctx = _context(app, op.id, _redactor(app))
        result = deploy_action.run_calls(ctx, deploy_plan, check=True, title="plan (check+diff)")
        op.artifacts = str(result.artifacts_dir)
        pending = _render_changes(app, deploy_plan, result, inventory)
        op.details["changes_pending"] = pending
        if not result.success:
            _render_summary(app, deploy_plan, result)
            op.result, op.exit_code = "failed", int(ExitCode.FAILED)
            return int(ExitCode.FAILED)
        app.info(f"{pending} change(s) pending on {len(deploy_plan.hosts)} host(s)")
        if pending and not exit_zero:
            op.details["exit"] = "changes pending"
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


@click.command("deploy")
@click.option("--tenant", "-t", "tenants", multiple=True, help=SELECT_HELP_TENANT)
@click.option("--host", "-H", "hosts", multiple=True, help=SELECT_HELP_HOST)
@click.option("--yes", "-y", is_flag=True, help="Do not show the plan and ask; apply directly.")
@click.pass_obj
def deploy(app: AppContext, tenants: tuple[str, ...], hosts: tuple[str, ...], yes: bool) -> int:
    """Converge the selected hosts (default: the whole fleet) to the inventory.

    Takes the tenants' locks, shows the plan (check + diff) and asks unless --yes, applies,
    prints a summary (host, tenants, ok, changed, failed, unreachable, duration) and records
    the operation in the audit log. Exit 1 if any host failed or was unreachable.

    \b
    Example:
      tnoctl deploy --tenant givors --yes
    """
    from tnoctl.state import audit, locks

    inventory = _load(app)
    deploy_plan = _selection_plan(app, inventory, tenants, hosts, check=False)
    if not yes and not sys.stdin.isatty():
        raise InvalidInput("deploy needs --yes when not run from a terminal (it cannot ask for confirmation)")
    with audit.operation(
        app.state_dir, "deploy", sys.argv[1:], tenants=list(deploy_plan.tenants), hosts=list(deploy_plan.hosts)
    ) as op, locks.hold(app.state_dir, list(deploy_plan.tenants), "deploy", op.id):
        ctx = _context(app, op.id, _redactor(app))
        _refresh_lab_certificates(app)
        if not yes:
            preview = deploy_action.run_calls(ctx, deploy_plan, check=True, title="plan (check+diff)")
            pending = _render_changes(app, deploy_plan, preview, inventory)
            if not preview.success:
                _render_summary(app, deploy_plan, preview)
                op.artifacts = str(preview.artifacts_dir)
                op.result, op.exit_code = "failed", int(ExitCode.FAILED)
                return int(ExitCode.FAILED)
            if pending == 0:
                app.info("nothing to change")
            if not click.confirm(f"Apply to {len(deploy_plan.hosts)} host(s)?", default=False):
                op.result, op.exit_code = "refused", int(ExitCode.REFUSED)
                app.info("not applied")
                return int(ExitCode.REFUSED)
        result = deploy_action.run_calls(ctx, deploy_plan, check=False, title="deploy")
        op.artifacts = str(result.artifacts_dir)
        op.details["hosts"] = {
            name: {"changed": s.changed, "failed": s.failed, "unreachable": s.unreachable}
            for name, s in result.hosts.items()
        }
        _render_summary(app, deploy_plan, result)
        if not result.success:
            op.details["failed_hosts"] = result.failed_hosts
            op.result, op.exit_code = "failed", int(ExitCode.FAILED)
            return int(ExitCode.FAILED)
        return int(ExitCode.OK)


def _refresh_lab_certificates(app: AppContext) -> None:
    """In the lab, make sure every host certificate covers the tenants placed on it."""
    from tnoctl import paths

    if not app.is_lab or not (paths.lab_dir() / "ca" / "ca.crt").exists():
        return
    from tnoctl.lab.lab import Lab

    Lab(app.inventory).refresh_certificates()
