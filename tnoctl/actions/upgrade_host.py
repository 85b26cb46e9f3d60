"""The upgrade executor: waves of hosts, each locked, snapshotted, upgraded, gated, rolled back on failure.

Per host (every step journaled in tnoctl/state/journal.py and audited as ``upgrade step``):

1. ``window``   the tenants' maintenance windows, re-checked now (deferred unless --ignore-windows);
2. ``lock``     the tenants' locks (Locked, exit 3, names the holder);
3. ``snapshot`` installed version + a copy of the component's configuration on the host
                (``/var/backups/tno-upgrade/<id>/``) + a tagged borg archive of the component per tenant;
4. ``apply``    playbooks/upgrade.yml limited to the host (role ``upgrade.yml``, pinned version);
5. ``gate``     tnoctl's probes for every tenant of the host (tnoctl/actions/upgrade_gate.py);
6. on failure: ``rollback`` (same playbook, previous version, snapshot config) and ``regate``.

A wave starts only when the previous one is over and the failures (failed or rolled back hosts) do not
exceed ``max_failures``; within a wave hosts run ``batch`` at a time, and a failure also stops the
next batch. SIGINT stops the run between steps (a running playbook is cancelled); the journal then
says where each host stopped, and ``--resume`` continues from the last completed step of each
unfinished host, never touching a finished one.

Windows and locks are taken per host, not for the whole rollout: a rollout outlasts windows, a host
whose tenants are outside theirs is deferred (exit 4 at the end) while the others go on, and a
locked tenant fails only its host. :mod:`tnoctl.actions.upgrade` wraps a run in one operation.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions import upgrade_gate
from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation
from tnoctl.errors import Locked, OperationFailed
from tnoctl.plan.calls import PlaybookCall
from tnoctl.plan.upgrade import DEFAULT_WAVES, HostStep, UpgradePlan, apply_call, window_check
from tnoctl.state import store as state_store
from tnoctl.state.journal import HostProgress, Journal

SNAPSHOT_ROOT = "/var/backups/tno-upgrade"
CONFIG_PATHS = {"office": ["/etc/coolwsd"], "mail": ["/etc/postfix", "/etc/dovecot", "/etc/tno"]}
"""What the snapshot saves per component. The office role restores it on rollback; the mail configuration
is rendered entirely from the inventory and the release, so re-applying the previous release is its
rollback and the tarball is kept for the operator (docs/upgrades.md)."""
FAILED_STATES = ("failed", "rolled_back")


class Interrupted(Exception):
    """The operator asked to stop (SIGINT); the host's current step is left unfinished in the journal."""



@dataclass(frozen=True, kw_only=True)
class RolloutOptions:
    """What every rollout request shares (`upgrade office|mail` and `upgrade os`): waves, batches, scope,
    windows, gate, resume, preview. ``confirm`` receives the plan preview; None means go on (``--yes``)."""

    waves: str = DEFAULT_WAVES
    batch: int = 1
    max_failures: int = 0
    hosts: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    ignore_windows: bool = False
    gate_timeout: float = 180.0
    resume_id: str | None = None
    dry_run: bool = False
    confirm: Callable[[Outcome], bool] | None = None

    def rollout_params(self) -> dict[str, object]:
        """The shared audit parameters of the operation (what the operator asked for)."""
        return {"waves": self.waves, "batch": self.batch, "max_failures": self.max_failures, "hosts": self.hosts,
                "tenants": self.tenants, "ignore_windows": self.ignore_windows, "gate_timeout": self.gate_timeout,
                "resume": self.resume_id}

@dataclass
class Rollout:
    """One run (or resume) of a plan: the environment, its journal, and this run's knobs."""

    env: Env
    plan: UpgradePlan
    journal: Journal
    gate_timeout: float = 180.0
    safety_backup: bool = True  # a tagged borg archive of each tenant's component before its host
    stop: threading.Event = field(default_factory=threading.Event)  # set by SIGINT: stop between steps
    excluded: frozenset[str] = frozenset()  # "tenant/check" failing before the rollout (pre-flight)
    host_run: type[HostRun] | None = None  # the steps of one host: HostRun, or upgrade_os.OsHostRun

    def log(self, text: str) -> None:
        """One timestamped progress line on stderr."""
        stamp = datetime.fromtimestamp(self.env.clock(), UTC).astimezone().strftime("%H:%M:%S")
        self.env.output.info(f"{stamp} {text}")


@dataclass
class HostOutcome:
    """Final state of one host in this run (a row of the summary table)."""

    host: str
    tenants: tuple[str, ...]
    state: str
    from_version: str = ""
    detail: str = ""


def _audit_step(env: Env, journal: Journal, step: HostStep, name: str, ok: bool, detail: str) -> None:
    params = {"operation": journal.id, "host": step.host, "step": name}
    with operation(env, "upgrade step", params, tenants=step.tenants, hosts=[step.host], lock=False) as op:
        op.details.update({"operation": journal.id, "step": name, "detail": detail})
        if not ok:
            op.fail(reason=detail)


def _record_tenants(env: Env, plan: UpgradePlan, step: HostStep, state: str, started: float,
                    from_version: str, finished: float | None = None) -> None:
    for tenant in step.tenants:
        env.store.record_upgrade(state_store.UpgradeRecord(
            tenant=tenant, component=plan.component, state=state, started_at=started,
            finished_at=finished, from_version=from_version, to_version=plan.to_version))


class HostRun:
    """The steps of one host; each completed step is journaled before the next one starts."""

    def __init__(self, rollout: Rollout, step: HostStep, progress: HostProgress) -> None:
        self.rollout, self.step, self.prog = rollout, step, progress
        self.env, self.plan, self.journal = rollout.env, rollout.plan, rollout.journal
        self.started = state_store.now()

    def _say(self, text: str) -> None:
        self.rollout.log(f"{self.step.host}: {text}")

    def _begin(self, name: str) -> None:
        if self.rollout.stop.is_set():
            raise Interrupted(name)
        self.journal.record(self.step.host, name, "started")

    def _end(self, name: str, ok: bool, detail: str = "", **data: Any) -> None:
        self.journal.record(self.step.host, name, "done" if ok else "failed", detail, **data)
        if ok:
            self.prog.done_steps.append(name)
            self.prog.data.update(data)
        _audit_step(self.env, self.journal, self.step, name, ok, detail)

    def _flush_peer_queues(self) -> None:
        """Mail deferred on the other mail hosts while this one restarted goes out now, not in 5 minutes."""
        from tnoctl.plan.upgrade import component_hosts

        for peer in component_hosts(self.env.inventory, "mail"):
            if peer != self.step.host:
                try:
                    self.env.ssh.run(peer, ["postqueue", "-f"], timeout=30)
                except OperationFailed as exc:  # best effort: Postfix retries on its own anyway
                    self._say(f"could not flush {peer}'s queue: {exc.message}")

    def _finish(self, state: str, detail: str = "") -> HostOutcome:
        if self.plan.component == "mail" and state in ("done", "rolled_back"):
            self._flush_peer_queues()
        self.journal.record(self.step.host, "finish", state, detail)
        from_version = str(self.prog.data.get("from_version", ""))
        if state != "deferred":
            record_state = {"done": "succeeded"}.get(state, state)
            _record_tenants(self.env, self.plan, self.step, record_state, self.started, from_version,
                            state_store.now())
        self._say(f"{state}" + (f": {detail}" if detail else ""))
        return HostOutcome(self.step.host, self.step.tenants, state, from_version, detail)

    def run(self) -> HostOutcome:
        """Run (or resume) the host's steps; return its final state."""
        if not self.plan.ignore_windows:
            now = datetime.fromtimestamp(self.env.clock(), UTC)
            current = window_check(self.env.inventory, self.step, self.plan.component, now)
            if not current.window_ok:
                return self._finish("deferred", current.window_note + " (use --ignore-windows to override)")
        from tnoctl.state import locks

        try:
            with locks.hold(self.env.state_dir, self.step.tenants, "upgrade", self.journal.id):
                return self._locked()
        except Locked as exc:
            return self._finish("failed", f"not started: {exc.message}")

    def _locked(self) -> HostOutcome:
        if not self.prog.has("snapshot"):
            error = self._snapshot()
            if error:
                return self._finish("failed", error)
        needs_rollback = bool(self.prog.data.get("rollback_needed"))
        if not needs_rollback and not self.prog.has("apply"):
            needs_rollback = not self._apply()
        if not needs_rollback and not self.prog.has("gate"):
            gate = self._gate("gate", self.plan.to_version)
            if gate.ok:
                return self._finish("done", gate.summary)
            needs_rollback = True
        elif not needs_rollback:
            return self._finish("done", "gate passed before the interruption")
        return self._rollback()

    def _snapshot(self) -> str:
        """Save version, configuration and (mail) tagged archives; return an error, or '' when done."""
        self._begin("snapshot")
        host, component = self.step.host, self.plan.component
        from_version = upgrade_gate.installed_version(self.env.ssh.run, host, component)
        snap = f"{SNAPSHOT_ROOT}/{self.journal.id}"
        paths = [p.lstrip("/") for p in CONFIG_PATHS[component]]
        script = (f"set -e; mkdir -p -m 0700 {snap}; "
                  f"tar -C / --ignore-failed-read -czf {snap}/config.tar.gz {' '.join(paths)}")
        result = self.env.ssh.run(host, ["sh", "-c", script], timeout=120)
        error = "" if result.ok else f"not started: snapshot failed: {result.stderr.strip()[-200:]}"
        archives: list[str] | str = []
        if not error and self.rollout.safety_backup:
            archives = self._safety_backups()
        if isinstance(archives, str):
            error = f"not started: safety backup failed: {archives} (or --no-safety-backup)"
        if error:
            self._end("snapshot", False, error)
            return error
        _record_tenants(self.env, self.plan, self.step, "running", self.started, from_version)
        self._end("snapshot", True, f"{component} {from_version}; config saved in {snap}",
                  from_version=from_version, snapshot_dir=snap, archives=archives)
        self._say(f"snapshot: {component} {from_version}, config in {snap}"
                  + (f", {len(archives)} tagged archive(s)" if archives else ""))
        return ""

    def _safety_backups(self) -> list[str] | str:
        """A tagged borg archive per tenant of the host (incremental); the reason when one failed."""
        from tnoctl.actions.backup import run_one
        from tnoctl.plan.backup import plan_targets

        names = []
        for target in plan_targets(self.env.inventory, list(self.step.tenants)):
            outcome = run_one(self.env, target, tag=f"pre-upgrade-{self.journal.id}", components=(self.plan.component,))
            if not outcome.ok:
                return f"{target.slug}: {outcome.detail}"[:300]
            names.append(str(outcome.data.get("archive", "")))
        return names

    def _call(self, version: str, rollback: bool) -> PlaybookCall:
        """The playbook call of the apply (or rollback) step."""
        return apply_call(self.plan, self.step.host, version, self.journal.id, rollback=rollback,
                          snapshot_dir=str(self.prog.data.get("snapshot_dir", "")))

    def _playbook(self, version: str, rollback: bool, label: str) -> tuple[bool, str]:
        call = self._call(version, rollback)
        # no live display (title ""): hosts of a batch run in parallel and log one line per step
        result = self.env.playbooks.run(call, run_id=f"{self.journal.id}-{self.step.host}-{label}", hosts=(),
                                        title="", cancel=self.rollout.stop.is_set)
        if result.status == "canceled":
            raise Interrupted(label)
        if result.success:
            return True, f"{sum(s.changed for s in result.hosts.values())} change(s); {result.artifacts_dir}"
        reasons = [f"{f.task}: {f.message}" for f in result.failed_tasks] or [f"status {result.status}"]
        return False, "; ".join(reasons)[:400]

    def _apply(self) -> bool:
        self._begin("apply")
        self._say(f"apply {self.plan.component} {self.plan.to_version}")
        ok, detail = self._playbook(self.plan.to_version, False, "apply")
        self._end("apply", ok, detail, **({} if ok else {"rollback_needed": True}))
        return ok

    def _gate(self, name: str, version: str) -> upgrade_gate.GateResult:
        self._begin(name)
        self._say(f"{name}: probing {len(self.step.tenants)} tenant(s) at {version}")
        gate = self._check(version)
        if not gate.ok and self.rollout.stop.is_set():
            raise Interrupted(name)
        self._end(name, gate.ok, gate.summary, **({} if gate.ok else {"rollback_needed": True}))
        return gate

    def _check(self, version: str) -> upgrade_gate.GateResult:
        """The health gate of the host at ``version`` (retried until it passes or times out)."""
        return upgrade_gate.check(self.env, self.plan.component, self.step.host, list(self.step.tenants), version,
                                  timeout=self.rollout.gate_timeout, stop=self.rollout.stop.is_set,
                                  excluded=self.rollout.excluded)

    def _rollback(self) -> HostOutcome:
        previous = str(self.prog.data.get("from_version", ""))
        if not previous or previous == upgrade_gate.UNKNOWN:
            return self._finish("failed", "cannot roll back: the previous version is unknown")
        if not self.prog.has("rollback"):
            self._begin("rollback")
            self._say(f"rollback to {previous}")
            ok, detail = self._playbook(previous, True, "rollback")
            self._end("rollback", ok, detail)
            if not ok:
                return self._finish("failed", f"rollback to {previous} failed: {detail}")
        gate = self._gate("regate", previous)
        if gate.ok:
            return self._finish("rolled_back", f"upgrade failed, back on {previous} and healthy")
        return self._finish("failed", f"rolled back to {previous} but still unhealthy: {gate.summary}")


def _halt_note(failures: int, plan: UpgradePlan) -> str:
    return f"halted: {failures} failed host(s) > --max-failures {plan.max_failures}"


def _run_batch(pool: ThreadPoolExecutor, rollout: Rollout, batch: list[HostStep],
               progress: dict[str, HostProgress]) -> list[HostOutcome]:
    """Run one batch of hosts in parallel; hosts stopped by SIGINT give no outcome."""
    host_run = rollout.host_run or HostRun
    futures = [pool.submit(host_run(rollout, step, progress[step.host]).run) for step in batch]
    done = []
    for future in futures:
        try:
            done.append(future.result())
        except Interrupted:
            continue
    return done


def _waves(pool: ThreadPoolExecutor, rollout: Rollout, progress: dict[str, HostProgress],
           outcomes: dict[str, HostOutcome]) -> None:
    plan, journal = rollout.plan, rollout.journal
    failures = sum(1 for o in outcomes.values() if o.state in FAILED_STATES)
    for wave in plan.waves:
        todo = [s for s in wave.hosts if not progress[s.host].finished]
        if todo and failures <= plan.max_failures:
            rollout.log(f"wave {wave.index + 1}/{len(plan.waves)} ({wave.name}): " + ", ".join(s.host for s in todo))
        for start in range(0, len(todo), plan.batch):
            batch = todo[start:start + plan.batch]
            if failures > plan.max_failures:
                for step in batch:
                    journal.record(step.host, "finish", "skipped", _halt_note(failures, plan))
                    outcomes[step.host] = HostOutcome(step.host, step.tenants, "skipped", "",
                                                      _halt_note(failures, plan))
                continue
            for result in _run_batch(pool, rollout, batch, progress):
                outcomes[result.host] = result
                failures += result.state in FAILED_STATES
            if rollout.stop.is_set():
                raise KeyboardInterrupt


def execute(rollout: Rollout) -> list[HostOutcome]:
    """Run (or resume) the plan wave by wave; return every host's outcome in plan order."""
    from tnoctl.state.locks import process_start_time

    plan, journal = rollout.plan, rollout.journal
    progress = journal.progress([s.host for s in plan.hosts])
    outcomes: dict[str, HostOutcome] = {
        s.host: HostOutcome(s.host, s.tenants, progress[s.host].state,
                            str(progress[s.host].data.get("from_version", "")),
                            f"{progress[s.host].detail} (earlier run)")
        for s in plan.hosts if progress[s.host].finished
    }
    journal.record("", "run", "started", pid=os.getpid(), pid_start=process_start_time(os.getpid()))
    status = "crashed"
    try:
        with ThreadPoolExecutor(max_workers=plan.batch, thread_name_prefix="upgrade") as pool:
            try:
                _waves(pool, rollout, progress, outcomes)
            except KeyboardInterrupt:
                rollout.stop.set()  # running hosts cancel their playbook; leaving the pool waits for them
                status = "interrupted"
                raise
        status = "finished"
    finally:
        journal.record("", "run", status)
    return [outcomes[s.host] for s in plan.hosts if s.host in outcomes]


def resumable_plan(journal: Journal) -> dict[str, Any]:
    """The stored plan of an operation, or OperationFailed when it cannot be resumed."""
    state = journal.state()
    if state == "running":
        raise OperationFailed(f"operation {journal.id} is still running (pid alive); wait for it or stop it first")
    return journal.plan()
