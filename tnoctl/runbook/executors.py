"""The real step runners: probes, SSH commands, playbook runs and tnoctl verbs.

Each goes through the process's one environment (:class:`tnoctl.actions.env.Env`): probes through
tnoctl.probes, SSH through ``env.ssh``, playbooks through ``env.playbooks``
(tnoctl.actions.deploy.run_calls), tnoctl verbs through the action registry
(tnoctl.actions.registry, never tnoctl.cli), so runbooks do nothing an operator's verb could not.
Output is scrubbed of vault secrets before it is shown. Changing ssh and playbook steps hold the
tenant's lock while they run (a tnoctl verb's action takes its own locks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.errors import InvalidInput
from tnoctl.runbook.engine import Params, StepResult
from tnoctl.runbook.schema import LocalStep, PlaybookStep, ProbeStep, SshStep, Step, TnoctlStep, changes

PROBE_TIMEOUT = 10.0
SSH_TIMEOUT = 300.0
LOCAL_TIMEOUT = 300.0


class ProjectExecutor:
    """Runs steps against the real inventory, for one runbook run (audit operation ``run_id``)."""

    def __init__(self, env: Env, run_id: str) -> None:
        self.env = env
        self.inventory = env.inventory
        self.run_id = run_id
        self.redact = env.redact

    # ------------------------------------------------------------------ describe
    def describe(self, step: Step, params: Params) -> str:
        """One line: what runs where."""
        if isinstance(step, ProbeStep):
            return f"probe {','.join(step.checks)} of {params.tenant} ({self._components(step, params)})"
        if isinstance(step, SshStep):
            return f"ssh {self._host(step, params)} {shlex.join(params.expand(a) for a in step.argv)}"
        if isinstance(step, LocalStep):
            return f"local {shlex.join(params.expand(a) for a in step.argv)}"
        if isinstance(step, PlaybookStep):
            tags = f" --tags {','.join(step.tags)}" if step.tags else ""
            mode = " --check --diff" if step.check else ""
            hosts = ",".join(self._plan(step, params).hosts)
            return f"site.yml tno_action={step.action}{tags}{mode} on {hosts}"
        if isinstance(step, TnoctlStep):
            return "tnoctl " + shlex.join(params.expand(a) for a in step.argv)
        return step.kind

    # ------------------------------------------------------------------ run
    def run(self, step: Step, params: Params) -> StepResult:
        """Run one step (dispatch by type)."""
        runners: dict[type, Callable[[Any, Params], StepResult]] = {
            ProbeStep: self._probe,
            SshStep: self._ssh_step,
            LocalStep: self._local,
            PlaybookStep: self._playbook,
            TnoctlStep: self._tnoctl,
        }
        return runners[type(step)](step, params)

    def _components(self, step: Step, params: Params) -> str:
        return step.component or ",".join(sorted(params.components))

    def _probe(self, step: ProbeStep, params: Params) -> StepResult:
        from tnoctl.probes import wiring
        from tnoctl.probes.runner import run_probes
        from tnoctl.probes.targets import ProbeOptions

        if not params.tenant:
            raise InvalidInput("a probe step needs --tenant")
        inv = self.inventory
        opts = ProbeOptions(wiring.default_ca_file(inv.path), PROBE_TIMEOUT, "roundtrip" in step.checks,
                            inv.platform.tno_office_version)
        probes = wiring.all_probes(
            inv, opts, [params.tenant], wiring.secret_lookup(inv.path, self.env.vault_password_file),
            wiring.ssh_runner(self.env.ssh) if "queue" in step.checks else None,
            self.env.store if "backup" in step.checks else None,
        )
        wanted = {step.component} if step.component else set(params.components)
        results = [r for r in run_probes([p for p in probes if p.check in step.checks])
                   if r.tenant == params.tenant and r.component in wanted]
        if not results:
            return StepResult(False, [f"no probe of {params.tenant} matches {', '.join(step.checks)}"])
        lines = [f"{'OK  ' if r.ok else 'FAIL'} {r.component}/{r.check} {r.latency_seconds:.3f}s "
                 f"{self.redact(r.detail)}" for r in results]
        return StepResult(all(r.ok for r in results), lines)

    def _host(self, step: SshStep, params: Params) -> str:
        if step.component is not None:
            host = params.values.get(f"{step.component}_host", "")
        else:
            host = params.expand(step.host or "")
            host = params.values["backup_host"] if host == "backup" else host
        if host not in self.inventory.hosts:
            raise InvalidInput(f"ssh step {step.id}: no such host {host!r} in the inventory")
        return host

    @contextlib.contextmanager
    def _locked(self, step: Step, params: Params) -> Iterator[None]:
        if not changes(step) or not params.tenant:
            yield
            return
        from tnoctl.state import locks

        with locks.hold(self.env.state_dir, [params.tenant], "runbook", self.run_id, warn=self.env.output.warn):
            yield

    def _ssh_step(self, step: SshStep, params: Params) -> StepResult:
        host = self._host(step, params)
        with self._locked(step, params):
            res = self.env.ssh.run(host, [params.expand(a) for a in step.argv], timeout=SSH_TIMEOUT)
        lines = [self.redact(line) for line in (res.stdout + res.stderr).rstrip().splitlines()]
        return StepResult(res.ok, [*lines, f"(exit status {res.rc})"], host=host, details={"rc": res.rc})

    def _local(self, step: LocalStep, params: Params) -> StepResult:
        """Run the argv on this machine (no shell), output scrubbed; a missing command is a failed step."""
        argv = [params.expand(a) for a in step.argv]
        with self._locked(step, params):
            try:
                res = subprocess.run(argv, capture_output=True, text=True, timeout=LOCAL_TIMEOUT, check=False,
                                     stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return StepResult(False, [self.redact(f"{argv[0]}: {exc}")], host="localhost")
        lines = [self.redact(line) for line in (res.stdout + res.stderr).rstrip().splitlines()]
        return StepResult(res.returncode == 0, [*lines, f"(exit status {res.returncode})"], host="localhost",
                          details={"rc": res.returncode})

    def _plan(self, step: PlaybookStep, params: Params) -> Any:
        from tnoctl.plan.deploy import plan_deploy

        if not params.tenant:
            raise InvalidInput("a playbook step needs --tenant")
        plan = plan_deploy(self.inventory, tenants=[params.tenant], action=step.action, check=step.check)
        calls = tuple(dataclasses.replace(c, tags=tuple(step.tags)) for c in plan.calls)
        return dataclasses.replace(plan, calls=calls)

    def _playbook(self, step: PlaybookStep, params: Params) -> StepResult:
        from tnoctl.actions import deploy as deploy_action

        plan = self._plan(step, params)
        with self._locked(step, params):
            result = deploy_action.run_calls(self.env, plan, f"{self.run_id}-{step.id}", check=step.check,
                                             title=f"runbook step {step.id}")
        lines = [" ".join(str(v) for v in row) for row in deploy_action.summary_rows(plan, result)]
        lines += [f"~ {c.host}: {c.task}" + (f" [{c.item}]" if c.item else "") for c in result.changed_tasks]
        lines += [f"{f.host}: {f.task}: {f.message}" for f in result.failed_tasks]
        lines.append(f"artifacts: {result.artifacts_dir}")
        ok = result.success and not (step.check and result.changed_tasks)
        details = {"artifacts": str(result.artifacts_dir)}
        return StepResult(ok, lines, host=",".join(plan.hosts), details=details)

    def _tnoctl(self, step: TnoctlStep, params: Params) -> StepResult:
        from tnoctl.actions import registry

        outcome = registry.call(self.env, [params.expand(a) for a in step.argv])
        rc = int(outcome.exit_code)
        lines = [self.redact(line) for line in registry.outcome_lines(outcome)]
        return StepResult(rc == 0, [*lines, f"(exit status {rc})"], details={"rc": rc})
