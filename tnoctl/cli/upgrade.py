"""`tnoctl upgrade COMPONENT --to VERSION`, `tnoctl upgrade --resume ID`, `tnoctl upgrade status [ID]`.

Parse, confirm (the plan is shown first), call one action (tnoctl/actions/upgrade.py), render.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from tnoctl.cli.confirm import confirm, render, require_yes
from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput


class _UpgradeGroup(click.Group):
    """`upgrade status ...` is a subcommand; anything else (`upgrade office --to X`, `--resume ID`) runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


_ROLLOUT_OPTIONS = [
    click.option("--waves", default="canary,25%,100%", show_default=True,
                 help="Comma list: 'canary' (hosts of pilot tenants), N (hosts) or N% (cumulative share)."),
    click.option("--batch", default=1, show_default=True, type=int, help="Hosts upgraded in parallel within a wave."),
    click.option("--max-failures", default=0, show_default=True, type=int,
                 help="Failed or rolled-back hosts tolerated before the rollout halts."),
    click.option("--hosts", "-H", "hosts", multiple=True, help="Only these hosts (repeatable)."),
    click.option("--tenant", "-t", "tenants", multiple=True, help="Only the hosts serving these tenants (repeatable)."),
    click.option("--ignore-windows", is_flag=True, help="Upgrade hosts whose tenants are outside their maintenance "
                 "window (default: defer them, exit 4)."),
]


def _rollout_options(command: Callable[..., int]) -> Callable[..., int]:
    """The wave, batch, selection and window options shared by `upgrade run` and `upgrade os`."""
    for option in reversed(_ROLLOUT_OPTIONS):
        command = option(command)
    return command


@click.group("upgrade", cls=_UpgradeGroup)
def upgrade() -> None:
    """Upgrade a component (office, mail) or the OS packages host by host in health-gated waves, with rollback.

    `tnoctl upgrade COMPONENT --to VERSION ...` runs a rollout (see `tnoctl upgrade run --help`);
    `tnoctl upgrade os [--security-only] [--packages P,...]` applies Debian updates the same way;
    `tnoctl upgrade status [ID]` shows one; `tnoctl upgrade --resume ID` continues an interrupted one.

    \b
    Examples:
      tnoctl upgrade office --to 24.04.11.1 --waves canary,100%
      tnoctl upgrade os --security-only --dry-run
      tnoctl upgrade status
      tnoctl upgrade --resume 20261129T101500Z-3f2a
    """


@upgrade.command("run")
@click.argument("component", required=False, type=click.Choice(["office", "mail"]))
@click.option("--to", "to_version", metavar="VERSION", help="Target version (office: coolwsd package version; "
              "mail: tno_mail_release).")
@_rollout_options
@click.option("--gate-timeout", default=180.0, show_default=True, type=float,
              help="Seconds the health gate waits for every tenant of a host to pass.")
@click.option("--no-safety-backup", is_flag=True, help="Skip the tagged borg archive of each tenant's component "
              "taken before its host is upgraded (the version and configuration snapshot is always taken).")
@click.option("--pin/--no-pin", default=True, show_default=True,
              help="After a clean rollout, write the version into group_vars/all/platform.yml.")
@click.option("--resume", "resume_id", metavar="ID", help="Continue an interrupted rollout from its journal.")
@click.option("--dry-run", is_flag=True, help="Show the plan and exit.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --dry-run or --yes): the plan "
              "{component, to_version, batch, max_failures, ignore_windows, hosts: [{wave, wave_name, host, tenants, "
              "installed, window_open, closed_windows}]}, or the result {operation, hosts: {HOST: STATE}}.")
@click.pass_obj
def run(app: AppContext, component: str | None, to_version: str | None, waves: str, batch: int, max_failures: int,
        hosts: tuple[str, ...], tenants: tuple[str, ...], ignore_windows: bool, gate_timeout: float,
        no_safety_backup: bool, pin: bool, resume_id: str | None, dry_run: bool, yes: bool, as_json: bool) -> int:
    """Roll COMPONENT out to --to VERSION, host by host, in waves.

    Per host: lock its tenants, check their maintenance windows, snapshot (installed version,
    configuration, and a tagged borg archive of each tenant's component), apply the role's upgrade,
    then probe every tenant of the host; on failure roll back to the snapshot and halt once more
    than --max-failures hosts failed. Every step goes to the operation journal
    (`tnoctl upgrade status ID`) and the audit log. Exit 0 when every host is upgraded, 1 when
    one failed or was rolled back, 3 when a tenant is locked, 4 when hosts were deferred by their
    maintenance window, 130 when interrupted (resume with --resume ID).

    \b
    Examples (`run` may be left out):
      tnoctl upgrade office --to 24.04.11.1 --waves canary,100% --yes
      tnoctl upgrade run mail --to 2 --batch 2 --max-failures 1
    """
    from tnoctl.actions import upgrade as upgrade_action
    from tnoctl.actions.operation import Outcome

    if as_json and not (dry_run or yes):
        raise InvalidInput("upgrade --json needs --dry-run or --yes (the plan to confirm is shown as a table)")
    if not dry_run:
        require_yes("upgrade", yes)  # before planning: nobody could answer the question

    def show_and_ask(plan: Outcome) -> bool:
        if not as_json:
            render(app, plan)
        return confirm("upgrade", f"Upgrade {plan.data['component']} to {plan.data['to_version']} on "
                                  f"{len(plan.rows)} host(s)?", yes)

    request = upgrade_action.UpgradeRequest(
        component=component, to_version=to_version, waves=waves, batch=batch, max_failures=max_failures,
        hosts=hosts, tenants=tenants, ignore_windows=ignore_windows, gate_timeout=gate_timeout,
        safety_backup=not no_safety_backup, pin=pin, resume_id=resume_id, dry_run=dry_run, confirm=show_and_ask)
    return render(app, upgrade_action.run(app.env, request), as_json=as_json)


@upgrade.command("os")
@click.option("--packages", "packages", metavar="P,...", help="Only these Debian packages (comma list), when "
              "an update is pending for them.")
@click.option("--security-only", is_flag=True, help="Only updates from the security archive (bookworm-security).")
@_rollout_options
@click.option("--gate-timeout", default=180.0, show_default=True, type=float,
              help="Seconds the health gate waits for the host's packages, services and tenants to pass.")
@click.option("--resume", "resume_id", metavar="ID", help="Continue an interrupted OS rollout from its journal.")
@click.option("--dry-run", is_flag=True, help="Run the pre-flight, show the plan (packages per host) and exit.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --dry-run or --yes): the plan "
              "{component, selection, hosts: [{wave, host, tenants, packages: {PKG: VERSION}, window_open, "
              "not_restorable}], up_to_date}, or the result {operation, hosts: {HOST: STATE}, reboot_required}.")
@click.pass_obj
def os_(app: AppContext, packages: str | None, security_only: bool, waves: str, batch: int, max_failures: int,
        hosts: tuple[str, ...], tenants: tuple[str, ...], ignore_windows: bool, gate_timeout: float,
        resume_id: str | None, dry_run: bool, yes: bool, as_json: bool) -> int:
    """Apply pending Debian updates host by host, in the same health-gated waves as a component upgrade.

    Pre-flight on every host (apt-get update, apt-get -s upgrade): hosts with nothing to install are
    reported up to date and left out. Per host: windows, locks, snapshot of the installed package
    versions and running services, install of the exact planned versions, needrestart restarts the
    services using replaced libraries, then the gate (versions, services back, every tenant's probes);
    on failure every changed package goes back to its recorded version (apt-get --allow-downgrades).
    A pending reboot is reported, never done. Exit codes as `upgrade run`.

    \b
    Examples:
      tnoctl upgrade os --security-only --dry-run
      tnoctl upgrade os --packages openssl,libssl3 --waves canary,100% --yes
      tnoctl upgrade os --resume 20261129T101500Z-3f2a --yes
    """
    from tnoctl.actions import upgrade_os
    from tnoctl.actions.operation import Outcome
    from tnoctl.plan.upgrade_os import parse_packages

    if as_json and not (dry_run or yes):
        raise InvalidInput("upgrade os --json needs --dry-run or --yes (the plan to confirm is shown as a table)")
    if not dry_run:
        require_yes("upgrade", yes)

    def show_and_ask(plan: Outcome) -> bool:
        if not as_json:
            render(app, plan)
        return confirm("upgrade", f"Upgrade the OS packages ({plan.data['selection']}) on "
                                  f"{len(plan.data['hosts'])} host(s)?", yes)

    request = upgrade_os.OsUpgradeRequest(
        packages=parse_packages(packages) if packages is not None else (), security_only=security_only,
        waves=waves, batch=batch, max_failures=max_failures, hosts=hosts, tenants=tenants,
        ignore_windows=ignore_windows, gate_timeout=gate_timeout, resume_id=resume_id, dry_run=dry_run,
        confirm=show_and_ask)
    return render(app, upgrade_os.run(app.env, request), as_json=as_json)


@upgrade.command("status")
@click.argument("operation_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(app: AppContext, operation_id: str | None, as_json: bool) -> int:
    """Show a rollout's progress per host from its journal (default: the latest rollout).

    \b
    Example:
      tnoctl upgrade status --json
    """
    from tnoctl.actions import upgrade as upgrade_action

    outcome = upgrade_action.status(app.env, upgrade_action.StatusRequest(operation_id))
    if as_json:
        return render(app, outcome, as_json=True)
    app.info(outcome.message)
    outcome.message = ""
    return render(app, outcome)
