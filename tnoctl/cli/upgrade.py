"""`tnoctl upgrade COMPONENT --to VERSION`, `tnoctl upgrade --resume ID`, `tnoctl upgrade status [ID]`.

Parse, plan (tnoctl/plan/upgrade.py), show, confirm, execute (tnoctl/actions/upgrade.py), render.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import click

from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode, InvalidInput

PLAN_COLUMNS = ["wave", "host", "tenants", "installed", "target", "window"]
SUMMARY_COLUMNS = ["host", "tenants", "state", "from", "detail"]
STATUS_COLUMNS = ["wave", "host", "tenants", "state", "done steps", "detail"]


class _UpgradeGroup(click.Group):
    """`upgrade status ...` is a subcommand; anything else (`upgrade office --to X`, `--resume ID`) runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("upgrade", cls=_UpgradeGroup)
def upgrade() -> None:
    """Upgrade a component (office, mail) host by host in health-gated waves, with automatic rollback.

    `tnoctl upgrade COMPONENT --to VERSION ...` runs a rollout (see `tnoctl upgrade run --help`);
    `tnoctl upgrade status [ID]` shows one; `tnoctl upgrade --resume ID` continues an interrupted one.

    \b
    Examples:
      tnoctl upgrade office --to 24.04.11.1 --waves canary,100%
      tnoctl upgrade status
      tnoctl upgrade --resume 20261129T101500Z-3f2a
    """


def _env(app: AppContext, inventory, gate_timeout: float, safety_backup: bool):
    from tnoctl.actions.upgrade import UpgradeEnv
    from tnoctl.backup.remote import BackupSsh
    from tnoctl.config.vault import secret_scrubber

    ssh = BackupSsh.for_inventory(inventory)

    def log(text: str) -> None:
        app.err_console.print(f"{time.strftime('%H:%M:%S')} {text}", markup=False, highlight=False)

    return UpgradeEnv(inventory, app.inventory, app.state_dir, app.vault_password_file, ssh, log,
                      secret_scrubber(app.inventory, app.vault_password_file), gate_timeout, safety_backup)


def _installed(env, plan) -> dict[str, str]:
    """Installed version of the component on every host of the plan (parallel SSH)."""
    from tnoctl.actions.upgrade_gate import installed_version

    hosts = [s.host for s in plan.hosts]
    with ThreadPoolExecutor(max_workers=min(16, len(hosts) or 1)) as pool:
        found = pool.map(lambda h: installed_version(env.ssh.run, h, plan.component), hosts)
    return dict(zip(hosts, found, strict=True))


def _show_plan(app: AppContext, plan, installed: dict[str, str]) -> None:
    rows = []
    for wave in plan.waves:
        for step in wave.hosts:
            window = "open" if step.window_ok else ("ignored: " if plan.ignore_windows else "DEFERRED: ")
            if not step.window_ok:
                window += ", ".join(step.closed_windows)
            rows.append([f"{wave.index + 1} {wave.name}", step.host, ", ".join(step.tenants) or "-",
                         installed.get(step.host, "?"), plan.to_version, window])
    app.print_table(PLAN_COLUMNS, rows)
    app.info(f"{len(plan.hosts)} host(s), {len(plan.tenants)} tenant(s), batch {plan.batch}, "
             f"max failures {plan.max_failures}")


def _exit_code(outcomes) -> int:
    states = {o.state for o in outcomes}
    if states & {"failed", "rolled_back", "skipped"}:
        return int(ExitCode.FAILED)
    if "deferred" in states:
        return int(ExitCode.REFUSED)
    return int(ExitCode.OK)


def _maybe_pin(app: AppContext, env, plan, outcomes, pin: bool) -> None:
    """After a clean rollout, pin the version in platform.yml once every host of the group runs it."""
    from tnoctl.actions.upgrade_gate import installed_version
    from tnoctl.config.pin import write_pin
    from tnoctl.plan.upgrade import VERSION_VAR, component_hosts

    if not pin or _exit_code(outcomes) != 0:
        return
    var = VERSION_VAR[plan.component]
    others = [h for h in component_hosts(env.inventory, plan.component) if h not in {o.host for o in outcomes}]
    behind = [h for h in others if installed_version(env.ssh.run, h, plan.component) != plan.to_version]
    if behind:
        app.info(f"{var} left unchanged: {', '.join(behind)} not on {plan.to_version} yet")
    elif write_pin(app.inventory, var, plan.to_version):
        app.info(f"pinned {var}: {plan.to_version} in {app.inventory}/group_vars/all/platform.yml (commit it)")


@upgrade.command("run")
@click.argument("component", required=False, type=click.Choice(["office", "mail"]))
@click.option("--to", "to_version", metavar="VERSION", help="Target version (office: coolwsd package version; "
              "mail: tno_mail_release).")
@click.option("--waves", default="canary,25%,100%", show_default=True,
              help="Comma list: 'canary' (hosts of pilot tenants), N (hosts) or N% (cumulative share).")
@click.option("--batch", default=1, show_default=True, type=int, help="Hosts upgraded in parallel within a wave.")
@click.option("--max-failures", default=0, show_default=True, type=int,
              help="Failed or rolled-back hosts tolerated before the rollout halts.")
@click.option("--hosts", "-H", "hosts", multiple=True, help="Only these hosts (repeatable).")
@click.option("--tenant", "-t", "tenants", multiple=True, help="Only the hosts serving these tenants (repeatable).")
@click.option("--ignore-windows", is_flag=True, help="Upgrade hosts whose tenants are outside their maintenance "
              "window (default: defer them, exit 4).")
@click.option("--gate-timeout", default=180.0, show_default=True, type=float,
              help="Seconds the health gate waits for every tenant of a host to pass.")
@click.option("--no-safety-backup", is_flag=True, help="Skip the tagged borg archive of each tenant's component "
              "taken before its host is upgraded (the version and configuration snapshot is always taken).")
@click.option("--pin/--no-pin", default=True, show_default=True,
              help="After a clean rollout, write the version into group_vars/all/platform.yml.")
@click.option("--resume", "resume_id", metavar="ID", help="Continue an interrupted rollout from its journal.")
@click.option("--dry-run", is_flag=True, help="Show the plan and exit.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def run(app: AppContext, component: str | None, to_version: str | None, waves: str, batch: int, max_failures: int,
        hosts: tuple[str, ...], tenants: tuple[str, ...], ignore_windows: bool, gate_timeout: float,
        no_safety_backup: bool, pin: bool, resume_id: str | None, dry_run: bool, yes: bool) -> int:
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
    from tnoctl.config import load_inventory
    from tnoctl.plan.upgrade import plan_from_dict, plan_to_dict, plan_upgrade
    from tnoctl.state import audit
    from tnoctl.state.journal import Journal

    inventory = load_inventory(app.inventory)
    if resume_id:
        if component or to_version:
            raise InvalidInput("--resume ID continues a stored rollout: give no COMPONENT or --to with it")
        from tnoctl.actions.upgrade import resumable_plan

        journal = Journal.open(app.state_dir, resume_id)
        plan = plan_from_dict(resumable_plan(journal))
    else:
        if not component or not to_version:
            raise InvalidInput("give COMPONENT and --to VERSION (or --resume ID); e.g. upgrade office --to 24.04.11.1")
        from datetime import UTC, datetime

        plan = plan_upgrade(inventory, component, to_version, now=datetime.now(UTC), waves=waves, hosts=hosts,
                            tenants=tenants, batch=batch, max_failures=max_failures, ignore_windows=ignore_windows)
        journal = None
    env = _env(app, inventory, gate_timeout, not no_safety_backup)
    _show_plan(app, plan, _installed(env, plan))
    if dry_run:
        return int(ExitCode.OK)
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput("upgrade needs --yes when not run from a terminal (it cannot ask for confirmation)")
        if not click.confirm(f"Upgrade {plan.component} to {plan.to_version} on {len(plan.hosts)} host(s)?"):
            app.info("not started")
            return int(ExitCode.REFUSED)
    verb = "upgrade resume" if journal else "upgrade"
    with audit.operation(app.state_dir, verb, sys.argv[1:], tenants=plan.tenants,
                         hosts=[s.host for s in plan.hosts]) as op:
        journal = journal or Journal.create(app.state_dir, op.id, plan_to_dict(plan))
        op.details.update({"operation": journal.id, "component": plan.component, "to_version": plan.to_version})
        app.info(f"operation {journal.id} (journal {journal.directory}); interrupt with Ctrl-C, "
                 f"then 'tnoctl upgrade --resume {journal.id}'")
        from tnoctl.actions.upgrade import execute

        try:
            outcomes = execute(env, plan, journal)
            app.print_table(SUMMARY_COLUMNS, [[o.host, ", ".join(o.tenants), o.state, o.from_version, o.detail]
                                              for o in outcomes])
            code = _exit_code(outcomes)
            op.details["hosts"] = {o.host: o.state for o in outcomes}
            op.exit_code = code
            _maybe_pin(app, env, plan, outcomes, pin)
        except KeyboardInterrupt:
            app.info(f"interrupted; see 'tnoctl upgrade status {journal.id}', continue with "
                     f"'tnoctl upgrade --resume {journal.id}'")
            raise
        finally:
            env.ssh.close()
        return code


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
    from tnoctl.plan.upgrade import plan_from_dict
    from tnoctl.state.journal import Journal, list_journals

    if operation_id is None:
        journals = list_journals(app.state_dir)
        if not journals:
            raise InvalidInput(f"no upgrade has run with state dir {app.state_dir}")
        journal = journals[-1]
    else:
        journal = Journal.open(app.state_dir, operation_id)
    plan = plan_from_dict(journal.plan())
    progress = journal.progress([s.host for s in plan.hosts])
    state = journal.state()
    if as_json:
        app.print_json({
            "id": journal.id, "state": state, "component": plan.component, "to_version": plan.to_version,
            "hosts": [{"host": s.host, "wave": plan.wave_of(s.host), "tenants": list(s.tenants),
                       "state": progress[s.host].state, "done_steps": progress[s.host].done_steps,
                       "current_step": progress[s.host].current, "detail": progress[s.host].detail,
                       "from_version": progress[s.host].data.get("from_version")}
                      for s in plan.hosts],
        })
    else:
        app.info(f"operation {journal.id}: {plan.component} -> {plan.to_version}, {state}")
        app.print_table(STATUS_COLUMNS, [
            [plan.wave_of(s.host) + 1, s.host, ", ".join(s.tenants), progress[s.host].state,
             ",".join(progress[s.host].done_steps), progress[s.host].detail]
            for s in plan.hosts])
    return int(ExitCode.OK)
