"""`upgrade os [--packages P,...] [--security-only]`: Debian updates host by host in health-gated waves.

The same rollout as ``upgrade office|mail`` (tnoctl/actions/upgrade_host.py: waves, batches,
per-host windows and locks, journal, ``--resume``, ``upgrade status``), with OS-specific steps:

- **pre-flight** (before anything changes, every selected host in parallel): ``apt-get update``, then
  ``apt-get -s upgrade``; the selection (tnoctl/plan/upgrade_os.py) gives each host its
  ``package -> version`` target, hosts with nothing to do are reported as up to date and left out;
  ``apt-cache madison`` tells which installed versions the mirror no longer offers (a rollback could
  not restore them: shown in the plan, not refused);
- **snapshot**: the installed versions (``dpkg-query -W``, also saved on the host under
  ``/var/backups/tno-upgrade/<id>/packages.tsv``) and the services running now; no borg archive (an
  OS update does not touch tenant data);
- **apply**: playbooks/upgrade.yml with ``tno_upgrade_component=os`` (role tno_common,
  tasks/upgrade.yml): the exact versions, then needrestart restarts what uses replaced libraries and the
  host's OS status metrics (pending updates, reboot required) are refreshed;
- **gate**: tnoctl/actions/upgrade_os_gate.py;
- **rollback**: every package whose version changed since the snapshot goes back to the recorded version
  (``apt-get install pkg=version --allow-downgrades`` from the mirror, same playbook), then the gate again.

A host that needs a reboot afterwards (``/var/run/reboot-required``) says so in the summary; tnoctl never
reboots on its own (the TnoRebootRequired alert and its runbook do, in the tenants' window).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions import upgrade_os_gate, upgrade_preflight
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.actions.upgrade import SUMMARY_COLUMNS, roll_out, summary_rows
from tnoctl.actions.upgrade_gate import GateResult
from tnoctl.actions.upgrade_host import (
    SNAPSHOT_ROOT,
    HostOutcome,
    HostRun,
    Rollout,
    RolloutOptions,
    resumable_plan,
)
from tnoctl.actions.upgrade_host import _record_tenants as record_tenants
from tnoctl.errors import ExitCode, InvalidInput, OperationFailed
from tnoctl.plan import upgrade_os as planner
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.upgrade import UpgradePlan, plan_from_dict, plan_to_dict
from tnoctl.state.journal import Journal

SIMULATE = ["apt-get", "-s", "-q", "upgrade"]
INSTALLED_FORMAT = "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n"
RUNNING = ["systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain"]
REBOOT_FLAG = "/var/run/reboot-required"
SESSION_UNITS = ("user@", "user-runtime-dir@", "run-")
PLAN_COLUMNS = ["wave", "host", "tenants", "packages", "window", "rollback"]


@dataclass(frozen=True)
class OsUpgradeRequest(RolloutOptions):
    """An OS rollout (``packages``/``security_only`` select the updates) or the resume of one (``resume_id``).

    ``confirm`` receives the plan preview and returns whether to go on; None means go on (``--yes``).
    """

    packages: tuple[str, ...] = ()
    security_only: bool = False

    def params(self) -> dict[str, object]:
        """The audit parameters of the operation."""
        return {"component": "os", "packages": self.packages, "security_only": self.security_only,
                **self.rollout_params()}


@dataclass
class HostCheck:
    """Pre-flight of one host: what would upgrade, what this rollout selects, what a rollback cannot restore."""

    host: str
    pending: list[planner.Pending] = field(default_factory=list)
    selected: dict[str, str] = field(default_factory=dict)
    not_restorable: list[str] = field(default_factory=list)  # "pkg installed-version" the mirror lacks


def check_host(run: Callable[..., Any], host: str, packages: tuple[str, ...], security_only: bool) -> HostCheck:
    """Refresh the index, simulate the upgrade, select, and check the installed versions are still offered."""
    update = run(host, upgrade_preflight.UPDATE, timeout=300)
    if not update.ok:
        raise OperationFailed(f"pre-flight: apt-get update failed on {host}; nothing was changed "
                              f"({update.stderr.strip()[-200:]})")
    simulation = run(host, SIMULATE, timeout=120)
    if not simulation.ok:
        raise OperationFailed(f"pre-flight: apt-get -s upgrade failed on {host}; nothing was changed "
                              f"({simulation.stderr.strip()[-200:]})")
    pending = planner.parse_simulation(simulation.stdout)
    check = HostCheck(host, pending, planner.select(pending, packages=packages, security_only=security_only))
    if check.selected:
        madison = run(host, [*upgrade_preflight.MADISON, *check.selected], timeout=60)
        offered = upgrade_preflight.parse_madison(madison.stdout) if madison.ok else {}
        installed = {p.package: p.installed for p in pending}
        check.not_restorable = [f"{p} {installed[p]}" for p in check.selected
                                if installed[p] not in offered.get(p, set())]
    return check


def preflight(env: Env, hosts: list[str], packages: tuple[str, ...], security_only: bool) -> dict[str, HostCheck]:
    """:func:`check_host` on every host in parallel (raises OperationFailed on the first host that fails)."""
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        found = pool.map(lambda h: check_host(env.ssh.run, h, packages, security_only), hosts)
        return dict(zip(hosts, found, strict=True))


def preview(plan: UpgradePlan, checks: dict[str, HostCheck]) -> Outcome:
    """The plan table (hosts to upgrade, then the hosts already up to date) and its ``--json`` document."""
    targets = plan.options.get("targets", {})
    rows: list[list[object]] = []
    hosts = []
    for wave in plan.waves:
        for step in wave.hosts:
            window = "open" if step.window_ok else ("ignored: " if plan.ignore_windows else "DEFERRED: ")
            if not step.window_ok:
                window += ", ".join(step.closed_windows)
            target = targets.get(step.host, {})
            lost = checks[step.host].not_restorable if step.host in checks else []
            rows.append([f"{wave.index + 1} {wave.name}", step.host, ", ".join(step.tenants) or "-",
                         f"{len(target)}: {', '.join(sorted(target))[:60]}", window,
                         "ok" if not lost else "cannot restore " + ", ".join(lost)[:60]])
            hosts.append({"wave": wave.index + 1, "wave_name": wave.name, "host": step.host,
                          "tenants": list(step.tenants), "packages": target, "window_open": step.window_ok,
                          "closed_windows": list(step.closed_windows), "not_restorable": lost})
    up_to_date = sorted(h for h, c in checks.items() if not c.selected)
    rows += [["-", h, "-", "0: up to date", "-", "-"] for h in up_to_date]
    message = (f"{len(plan.hosts)} host(s) to upgrade ({plan.to_version}), {len(up_to_date)} up to date, "
               f"batch {plan.batch}, max failures {plan.max_failures}")
    return Outcome(rows=rows, columns=PLAN_COLUMNS, message=message,
                   data={"component": "os", "selection": plan.to_version, "batch": plan.batch,
                         "max_failures": plan.max_failures, "ignore_windows": plan.ignore_windows, "hosts": hosts,
                         "up_to_date": up_to_date})


def plan_of(env: Env, request: OsUpgradeRequest) -> tuple[UpgradePlan, Journal | None, dict[str, HostCheck]]:
    """A new plan from the pre-flight, or the stored plan of ``--resume ID`` (no new pre-flight)."""
    if request.resume_id:
        if request.packages or request.security_only:
            raise InvalidInput("--resume ID continues a stored rollout: give no --packages or --security-only")
        journal = Journal.open(env.state_dir, request.resume_id)
        plan = plan_from_dict(resumable_plan(journal))
        if plan.component != planner.COMPONENT:
            raise InvalidInput(f"--resume: operation {journal.id} upgrades {plan.component}; "
                               f"use 'tnoctl upgrade --resume {journal.id}'")
        return plan, journal, {}
    hosts = planner.select_hosts(env.inventory, request.hosts, request.tenants)
    checks = preflight(env, hosts, request.packages, request.security_only)
    targets = {h: c.selected for h, c in checks.items()}
    plan = planner.plan_os(env.inventory, targets, label=planner.selection_label(request.packages,
                                                                                   request.security_only),
                           now=datetime.fromtimestamp(env.clock(), UTC), waves=request.waves,
                           batch=request.batch, max_failures=request.max_failures,
                           ignore_windows=request.ignore_windows)
    return plan, None, checks


def run(env: Env, request: OsUpgradeRequest) -> Outcome:
    """Pre-flight, plan, confirm, then the rollout in one audited operation (exit codes of ``upgrade``)."""
    plan, journal, checks = plan_of(env, request)
    shown = preview(plan, checks)
    if not plan.hosts:
        missing = [p for p in request.packages if not any(p in c.selected for c in checks.values())]
        shown.message = "nothing to upgrade: every selected host is up to date" + (
            f" (not upgradable anywhere: {', '.join(missing)})" if missing else "")
        return shown
    if request.dry_run:
        return shown
    if request.confirm is not None and not request.confirm(shown):
        return Outcome.failed("not started", ExitCode.REFUSED)
    verb = "upgrade resume" if journal else "upgrade"
    resuming = journal is not None
    with operation(env, verb, request.params(), tenants=plan.tenants, hosts=[s.host for s in plan.hosts],
                   lock=False) as op:
        journal = journal or Journal.create(env.state_dir, op.id, plan_to_dict(plan))
        op.details.update({"operation": journal.id, "component": "os", "selection": plan.to_version})
        env.output.info(f"operation {journal.id} (journal {journal.directory}); interrupt with Ctrl-C, "
                        f"then 'tnoctl upgrade os --resume {journal.id}'")
        progress = journal.progress([s.host for s in plan.hosts])
        todo = [s.host for s in plan.hosts if not progress[s.host].finished]
        rollout = Rollout(env, plan, journal, request.gate_timeout, False, threading.Event(), host_run=OsHostRun)
        outcomes, _code = roll_out(rollout, op, todo, resuming, "tnoctl upgrade os")
        reboot = sorted(o.host for o in outcomes if "reboot required" in o.detail)
        return outcome_of(op, rows=summary_rows(outcomes), columns=SUMMARY_COLUMNS,
                          data={"operation": journal.id, "hosts": op.details["hosts"], "reboot_required": reboot})


def running_services(text: str) -> list[str]:
    """``systemctl list-units --state=running`` -> the services the gate expects back (sorted).

    Per-login units (``user@UID``, ``user-runtime-dir@UID``) and transient ``run-*`` units come and go with
    SSH sessions, not with packages: they are left out.
    """
    names = {line.split()[0] for line in text.splitlines() if line.split()}
    return sorted(n for n in names if n.endswith(".service") and not n.startswith(SESSION_UNITS))


class OsHostRun(HostRun):
    """The steps of one host in an OS rollout (see the module docstring); the sequencing is HostRun's."""

    def _target(self) -> dict[str, str]:
        return dict(self.plan.options.get("targets", {}).get(self.step.host, {}))

    def _snapshot(self) -> str:
        self._begin("snapshot")
        host = self.step.host
        snap = f"{SNAPSHOT_ROOT}/{self.journal.id}"
        script = (f"set -e; mkdir -p -m 0700 {snap}; dpkg-query -W -f '{INSTALLED_FORMAT}' > {snap}/packages.tsv; "
                  f"cat {snap}/packages.tsv")
        result = self.env.ssh.run(host, ["sh", "-c", script], timeout=120)
        installed = planner.parse_installed(result.stdout) if result.ok else {}
        running = self.env.ssh.run(host, RUNNING, timeout=60)
        if not installed or not running.ok:
            reason = (result.stderr or running.stderr).strip()[-200:] or "no installed package read"
            error = f"not started: snapshot failed: {reason}"
            self._end("snapshot", False, error)
            return error
        services = running_services(running.stdout)
        from_version = f"{len(installed)} packages"
        record_tenants(self.env, self.plan, self.step, "running", self.started, from_version)
        self._end("snapshot", True, f"{from_version}, {len(services)} running services; saved in {snap}",
                  from_version=from_version, snapshot_dir=snap, installed=installed, services=services)
        self._say(f"snapshot: {from_version}, {len(services)} running services, versions in {snap}/packages.tsv")
        return ""

    def _call(self, version: str, rollback: bool) -> PlaybookCall:
        packages = self.prog.data.get("restored", {}) if rollback else self._target()
        return planner.os_call(self.step.host, packages, self.journal.id, rollback=rollback)

    def _check(self, version: str) -> GateResult:
        expected = self.prog.data.get("restored", {}) if version == "previous" else self._target()
        return upgrade_os_gate.check(self.env, self.step.host, list(self.step.tenants), expected,
                                     list(self.prog.data.get("services", [])), label=version,
                                     timeout=self.rollout.gate_timeout, stop=self.rollout.stop.is_set,
                                     excluded=self.rollout.excluded)

    def _rollback(self) -> HostOutcome:
        if not self.prog.has("rollback"):
            self._begin("rollback")
            now = self.env.ssh.run(self.step.host, ["dpkg-query", "-W", "-f", INSTALLED_FORMAT], timeout=60)
            if not now.ok:
                self._end("rollback", False, f"cannot read the installed versions: {now.stderr.strip()[-200:]}")
                return self._finish("failed", "rollback failed: cannot read the installed versions")
            restore = planner.downgrades(self.prog.data.get("installed", {}), planner.parse_installed(now.stdout))
            self.prog.data["restored"] = restore
            self._say(f"rollback: {len(restore)} package(s) back to their recorded versions")
            ok, detail = self._playbook("previous", True, "rollback") if restore else (True, "no package changed")
            self._end("rollback", ok, detail, restored=restore)
            if not ok:
                return self._finish("failed", f"rollback failed: {detail}")
        gate = self._gate("regate", "previous")
        if gate.ok:
            return self._finish("rolled_back", "upgrade failed, packages back to the snapshot and healthy")
        return self._finish("failed", f"rolled back but still unhealthy: {gate.summary}")

    def _finish(self, state: str, detail: str = "") -> HostOutcome:
        if state in ("done", "rolled_back"):
            try:
                flag = self.env.ssh.run(self.step.host, ["test", "-e", REBOOT_FLAG], timeout=30)
            except OperationFailed:
                flag = None
            if flag is not None and flag.ok:
                detail = f"{detail}; reboot required ({REBOOT_FLAG})"
        return super()._finish(state, detail)
