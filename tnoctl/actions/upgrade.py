"""`upgrade COMPONENT --to VERSION`, `upgrade --resume ID`, `upgrade status [ID]`: the operation around a rollout.

:func:`run` plans (tnoctl/plan/upgrade.py) or reloads a stored plan (``--resume``), reads the
installed versions, hands the plan to the verb's ``confirm`` (which shows it and asks), then runs the
executor (tnoctl/actions/upgrade_host.py) inside ONE audited operation (``upgrade`` or ``upgrade
resume``) and, after a clean rollout, pins the version in platform.yml. Locks and maintenance
windows are taken per host by the executor (a rollout outlasts windows), so the operation itself
takes neither. Exit 0 when every host is upgraded, 1 when one failed, was rolled back or skipped,
3/4 through the executor's per-host guards (4: hosts deferred by their windows), 130 on Ctrl-C.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions import upgrade_preflight
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.upgrade_gate import baseline_failures, installed_version
from tnoctl.actions.upgrade_host import HostOutcome, Rollout, RolloutOptions, execute, resumable_plan
from tnoctl.errors import ExitCode, InvalidInput
from tnoctl.plan.upgrade import (
    VERSION_VAR,
    UpgradePlan,
    component_hosts,
    plan_from_dict,
    plan_to_dict,
    plan_upgrade,
)
from tnoctl.state.journal import Journal, list_journals

PLAN_COLUMNS = ["wave", "host", "tenants", "installed", "target", "window"]
SUMMARY_COLUMNS = ["host", "tenants", "state", "from", "detail"]
STATUS_COLUMNS = ["wave", "host", "tenants", "state", "done steps", "detail"]


@dataclass(frozen=True)
class UpgradeRequest(RolloutOptions):
    """A rollout (``component`` + ``to_version``) or the resume of a stored one (``resume_id``).

    ``confirm`` receives the plan preview (rows of :data:`PLAN_COLUMNS`, summary in ``message``),
    shows it and returns whether to go on; None means "go on" (``--yes``). ``dry_run`` stops after it.
    """

    component: str | None = None
    to_version: str | None = None
    safety_backup: bool = True
    pin: bool = True

    def params(self) -> dict[str, object]:
        """The audit parameters of the operation (what the operator asked for)."""
        return {"component": self.component, "to_version": self.to_version, **self.rollout_params(),
                "safety_backup": self.safety_backup, "pin": self.pin}


@dataclass(frozen=True)
class StatusRequest:
    """``upgrade status [ID]``: one rollout's journal (default: the latest)."""

    operation_id: str | None = None


def plan_of(env: Env, request: UpgradeRequest) -> tuple[UpgradePlan, Journal | None]:
    """The plan to run: a new one, or the stored plan of ``--resume ID`` with its journal."""
    if request.resume_id:
        if request.component or request.to_version:
            raise InvalidInput("--resume ID continues a stored rollout: give no COMPONENT or --to with it")
        journal = Journal.open(env.state_dir, request.resume_id)
        plan = plan_from_dict(resumable_plan(journal))
        if plan.component not in VERSION_VAR:
            raise InvalidInput(f"--resume: operation {journal.id} upgrades {plan.component}; "
                               f"use 'tnoctl upgrade {plan.component} --resume {journal.id}'")
        return plan, journal
    if not request.component or not request.to_version:
        raise InvalidInput("give COMPONENT and --to VERSION (or --resume ID); e.g. upgrade office --to 24.04.11.1")
    plan = plan_upgrade(env.inventory, request.component, request.to_version,
                        now=datetime.fromtimestamp(env.clock(), UTC), waves=request.waves, hosts=request.hosts,
                        tenants=request.tenants, batch=request.batch, max_failures=request.max_failures,
                        ignore_windows=request.ignore_windows)
    return plan, None


def installed(env: Env, plan: UpgradePlan) -> dict[str, str]:
    """Installed version of the component on every host of the plan (parallel SSH)."""
    hosts = [s.host for s in plan.hosts]
    with ThreadPoolExecutor(max_workers=min(16, len(hosts) or 1)) as pool:
        found = pool.map(lambda h: installed_version(env.ssh.run, h, plan.component), hosts)
    return dict(zip(hosts, found, strict=True))


def preview(plan: UpgradePlan, versions: dict[str, str]) -> Outcome:
    """The plan table the operator confirms: wave, host, tenants, installed, target, window."""
    rows: list[list[object]] = []
    for wave in plan.waves:
        for step in wave.hosts:
            window = "open" if step.window_ok else ("ignored: " if plan.ignore_windows else "DEFERRED: ")
            if not step.window_ok:
                window += ", ".join(step.closed_windows)
            rows.append([f"{wave.index + 1} {wave.name}", step.host, ", ".join(step.tenants) or "-",
                         versions.get(step.host, "?"), plan.to_version, window])
    message = (f"{len(plan.hosts)} host(s), {len(plan.tenants)} tenant(s), batch {plan.batch}, "
               f"max failures {plan.max_failures}")
    hosts = [{"wave": wave.index + 1, "wave_name": wave.name, "host": step.host, "tenants": list(step.tenants),
              "installed": versions.get(step.host), "window_open": step.window_ok,
              "closed_windows": list(step.closed_windows)} for wave in plan.waves for step in wave.hosts]
    return Outcome(rows=rows, columns=PLAN_COLUMNS, message=message,
                   data={"component": plan.component, "to_version": plan.to_version, "batch": plan.batch,
                         "max_failures": plan.max_failures, "ignore_windows": plan.ignore_windows, "hosts": hosts})


def exit_code(outcomes: Sequence[HostOutcome]) -> ExitCode:
    """1 when a host failed, was rolled back or skipped; else 4 when one was deferred; else 0."""
    states = {o.state for o in outcomes}
    if states & {"failed", "rolled_back", "skipped"}:
        return ExitCode.FAILED
    if "deferred" in states:
        return ExitCode.REFUSED
    return ExitCode.OK


def run(env: Env, request: UpgradeRequest) -> Outcome:
    """Plan, confirm, execute in one operation, pin (see the module docstring)."""
    plan, journal = plan_of(env, request)
    shown = preview(plan, installed(env, plan))
    if request.dry_run:
        return shown
    todo = _unfinished(plan, journal)
    upgrade_preflight.check_available(env.ssh.run, env.inventory, plan.component, todo, plan.to_version)
    if request.confirm is not None and not request.confirm(shown):
        return Outcome.failed("not started", ExitCode.REFUSED)
    resuming = journal is not None
    verb = "upgrade resume" if journal else "upgrade"
    with operation(env, verb, request.params(), tenants=plan.tenants, hosts=[s.host for s in plan.hosts],
                   lock=False) as op:
        journal = journal or Journal.create(env.state_dir, op.id, plan_to_dict(plan))
        op.details.update({"operation": journal.id, "component": plan.component, "to_version": plan.to_version})
        env.output.info(f"operation {journal.id} (journal {journal.directory}); interrupt with Ctrl-C, "
                        f"then 'tnoctl upgrade --resume {journal.id}'")
        rollout = Rollout(env, plan, journal, request.gate_timeout, request.safety_backup, threading.Event())
        outcomes, code = roll_out(rollout, op, todo, resuming, "tnoctl upgrade")
        if code == ExitCode.OK and request.pin:
            pin(env, plan, outcomes)
        return outcome_of(op, rows=summary_rows(outcomes), columns=SUMMARY_COLUMNS,
                          data={"operation": journal.id, "hosts": op.details["hosts"]})


def roll_out(rollout: Rollout, op: Any, todo: list[str], resuming: bool,
             command: str) -> tuple[list[HostOutcome], ExitCode]:
    """Inside the operation ``op``: baseline (pre-flight 2), execute, record the hosts' states, fail ``op`` if needed.

    ``command`` is the verb to resume with (``tnoctl upgrade``, ``tnoctl upgrade os``), named on Ctrl-C.
    """
    env, plan, journal = rollout.env, rollout.plan, rollout.journal
    excluded = baseline(env, plan, journal, todo, resuming)
    op.details["unhealthy_before"] = sorted(excluded)
    rollout.excluded = frozenset(excluded)
    try:
        outcomes = execute(rollout)
    except KeyboardInterrupt:
        env.output.info(f"interrupted; see 'tnoctl upgrade status {journal.id}', continue with "
                        f"'{command} --resume {journal.id}'")
        raise
    code = exit_code(outcomes)
    op.details["hosts"] = {o.host: o.state for o in outcomes}
    if code != ExitCode.OK:
        op.fail(int(code), f"{sum(o.state != 'done' for o in outcomes)} host(s) not upgraded")
    return outcomes, code


def summary_rows(outcomes: Sequence[HostOutcome]) -> list[list[object]]:
    """The summary table's rows (:data:`SUMMARY_COLUMNS`)."""
    return [[o.host, ", ".join(o.tenants), o.state, o.from_version, o.detail] for o in outcomes]


def _unfinished(plan: UpgradePlan, journal: Journal | None) -> list[str]:
    """Hosts of the plan this run may still touch (all of them for a new rollout)."""
    hosts = [s.host for s in plan.hosts]
    if journal is None:
        return hosts
    progress = journal.progress(hosts)
    return [h for h in hosts if not progress[h].finished]


def baseline(env: Env, plan: UpgradePlan, journal: Journal, todo: list[str], resuming: bool) -> list[str]:
    """``tenant/check`` failing before the rollout: journaled once, reused by ``--resume`` (pre-flight 2)."""
    recorded = [e for e in journal.events() if e.get("step") == "preflight" and e.get("status") == "done"]
    if resuming and recorded:
        return [str(k) for k in recorded[-1].get("data", {}).get("unhealthy", [])]
    tenants = sorted({t for s in plan.hosts if s.host in todo for t in s.tenants})
    unhealthy = baseline_failures(env, plan.component, tenants)
    keys = upgrade_preflight.unhealthy_now(unhealthy)
    journal.record("", "preflight", "done", "; ".join(unhealthy)[:400], unhealthy=keys)
    if keys:
        env.output.info("already unhealthy before the rollout (reported, excluded from the gate verdict): "
                        + "; ".join(unhealthy)[:600])
    return keys


def pin(env: Env, plan: UpgradePlan, outcomes: Sequence[HostOutcome]) -> None:
    """After a clean rollout, pin the version in platform.yml once every host of the group runs it."""
    from tnoctl.config.pin import write_pin

    var = VERSION_VAR[plan.component]
    others = [h for h in component_hosts(env.inventory, plan.component) if h not in {o.host for o in outcomes}]
    behind = [h for h in others if installed_version(env.ssh.run, h, plan.component) != plan.to_version]
    if behind:
        env.output.info(f"{var} left unchanged: {', '.join(behind)} not on {plan.to_version} yet")
    elif write_pin(env.inventory_path, var, plan.to_version):
        env.output.info(f"pinned {var}: {plan.to_version} in {env.inventory_path}/group_vars/all/platform.yml "
                        "(commit it)")


def status(env: Env, request: StatusRequest) -> Outcome:
    """A rollout's progress per host from its journal; ``data`` is the ``--json`` document."""
    if request.operation_id is None:
        journals = list_journals(env.state_dir)
        if not journals:
            raise InvalidInput(f"no upgrade has run with state dir {env.state_dir}")
        journal = journals[-1]
    else:
        journal = Journal.open(env.state_dir, request.operation_id)
    plan = plan_from_dict(journal.plan())
    progress = journal.progress([s.host for s in plan.hosts])
    state = journal.state()
    data = {
        "id": journal.id, "state": state, "component": plan.component, "to_version": plan.to_version,
        "hosts": [{"host": s.host, "wave": plan.wave_of(s.host), "tenants": list(s.tenants),
                   "state": progress[s.host].state, "done_steps": progress[s.host].done_steps,
                   "current_step": progress[s.host].current, "detail": progress[s.host].detail,
                   "from_version": progress[s.host].data.get("from_version")}
                  for s in plan.hosts],
    }
    rows: list[list[object]] = [[plan.wave_of(s.host) + 1, s.host, ", ".join(s.tenants), progress[s.host].state,
                                 ",".join(progress[s.host].done_steps), progress[s.host].detail]
                                for s in plan.hosts]
    return Outcome(rows=rows, columns=STATUS_COLUMNS, data=data,
                   message=f"operation {journal.id}: {plan.component} -> {plan.to_version}, {state}")
