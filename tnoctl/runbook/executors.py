"""The real step runners: probes, SSH commands, playbook runs and tnoctl verbs.

Each goes through the one adapter of its layer (tnoctl.probes runner, tnoctl.run.ssh,
tnoctl.actions.deploy.run_calls, tnoctl.cli.main), so runbooks do nothing an operator's verb
could not. Output is scrubbed of vault secrets before it is shown. Changing ssh and playbook
steps hold the tenant's lock while they run (a tnoctl verb takes its own locks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from tnoctl.errors import InvalidInput
from tnoctl.runbook.engine import Params, StepResult
from tnoctl.runbook.schema import PlaybookStep, ProbeStep, SshStep, Step, TnoctlStep, changes

PROBE_TIMEOUT = 10.0
SSH_TIMEOUT = 300.0


def redactor(app: Any) -> Callable[[str], str]:
    """The vault-aware scrubber for this run (see tnoctl.config.vault.secret_scrubber)."""
    from tnoctl.config.vault import secret_scrubber

    return secret_scrubber(app.inventory, app.vault_password_file)


class ProjectExecutor:
    """Runs steps against the real inventory, for one runbook run (audit operation ``run_id``)."""

    def __init__(self, app: Any, inventory: Any, run_id: str, redact: Callable[[str], str]) -> None:
        self.app = app
        self.inventory = inventory
        self.run_id = run_id
        self.redact = redact
        self._ssh: Any = None

    # ------------------------------------------------------------------ describe
    def describe(self, step: Step, params: Params) -> str:
        """One line: what runs where."""
        if isinstance(step, ProbeStep):
            return f"probe {','.join(step.checks)} of {params.tenant} ({self._components(step, params)})"
        if isinstance(step, SshStep):
            return f"ssh {self._host(step, params)} {shlex.join(params.expand(a) for a in step.argv)}"
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
            PlaybookStep: self._playbook,
            TnoctlStep: self._tnoctl,
        }
        return runners[type(step)](step, params)

    def close(self) -> None:
        """Close the SSH connections opened by the steps."""
        if self._ssh is not None:
            self._ssh.close()

    def _components(self, step: Step, params: Params) -> str:
        return step.component or ",".join(sorted(params.components))

    def _probe(self, step: ProbeStep, params: Params) -> StepResult:
        from tnoctl.probes import wiring
        from tnoctl.probes.runner import run_probes
        from tnoctl.probes.targets import ProbeOptions
        from tnoctl.state.store import Store

        if not params.tenant:
            raise InvalidInput("a probe step needs --tenant")
        inv = self.inventory
        opts = ProbeOptions(wiring.default_ca_file(inv.path), PROBE_TIMEOUT, "roundtrip" in step.checks,
                            inv.platform.tno_office_version)
        probes = wiring.all_probes(
            inv, opts, [params.tenant], wiring.secret_lookup(inv.path, self.app.vault_password_file),
            wiring.ssh_runner(inv) if "queue" in step.checks else None,
            Store(self.app.state_dir) if "backup" in step.checks else None,
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

        with locks.hold(self.app.state_dir, [params.tenant], "runbook", self.run_id):
            yield

    def _ssh_step(self, step: SshStep, params: Params) -> StepResult:
        from tnoctl.run.ssh import SshRunner

        host = self._host(step, params)
        if self._ssh is None:
            self._ssh = SshRunner.for_inventory(self.inventory)
        with self._locked(step, params):
            res = self._ssh.run(host, [params.expand(a) for a in step.argv], timeout=SSH_TIMEOUT)
        lines = [self.redact(line) for line in (res.stdout + res.stderr).rstrip().splitlines()]
        return StepResult(res.ok, [*lines, f"(exit status {res.rc})"], host=host, details={"rc": res.rc})

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
        ctx = deploy_action.RunContext(self.app.inventory, self.app.state_dir, f"{self.run_id}-{step.id}",
                                       self.app.vault_password_file, self.app.stderr, self.redact)
        with self._locked(step, params):
            result = deploy_action.run_calls(ctx, plan, check=step.check, title=f"runbook step {step.id}")
        lines = [" ".join(str(v) for v in row) for row in deploy_action.summary_rows(plan, result)]
        lines += [f"~ {c.host}: {c.task}" + (f" [{c.item}]" if c.item else "") for c in result.changed_tasks]
        lines += [f"{f.host}: {f.task}: {f.message}" for f in result.failed_tasks]
        lines.append(f"artifacts: {result.artifacts_dir}")
        ok = result.success and not (step.check and result.changed_tasks)
        details = {"artifacts": str(result.artifacts_dir)}
        return StepResult(ok, lines, host=",".join(plan.hosts), details=details)

    def _tnoctl(self, step: TnoctlStep, params: Params) -> StepResult:
        from tnoctl.cli import main

        app = self.app
        argv = ["--inventory", str(app.inventory), "--state-dir", str(app.state_dir)]
        if app.vault_password_file is not None:
            argv += ["--vault-password-file", str(app.vault_password_file)]
        out = io.StringIO()
        child = dataclasses.replace(app, stdout=out)
        rc = main([*argv, *(params.expand(a) for a in step.argv)], app=child)
        lines = [self.redact(line) for line in out.getvalue().rstrip().splitlines()]
        return StepResult(rc == 0, [*lines, f"(exit status {rc})"], details={"rc": rc})
