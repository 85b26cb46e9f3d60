"""Run a runbook's steps: diagnosis automatically, mitigation with confirmation, stop at a failure.

Pure orchestration: the step runners (:class:`Executor`), the question (``ask``), the output
(``show``) and the audit hook (``record``) are injected, so unit tests drive every path with fakes.

Rules (also in docs/architecture.md, "Runbooks"):
- a step whose ``component`` is not covered by the run, or whose ``when`` condition does not hold,
  is skipped;
- a ``confirm`` step asks; a yes approves the changing steps that follow, up to the next confirm;
  a changing step without such approval asks for itself; a no stops the run (exit 4);
- ``--yes`` answers yes; ``--dry-run`` runs the read-only diagnosis steps and only *describes*
  every changing step and the whole mitigation (exit 1 when the diagnosis found a failure);
- a failed step with ``expect: ok`` stops the run (exit 1: the problem remains); ``expect: any``
  records the finding and goes on. A runbook ends with a verification step, so exit 0 means fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tnoctl.errors import ExitCode, TnoError
from tnoctl.runbook.load import Runbook
from tnoctl.runbook.schema import WHEN_RE, Step, changes, expect

MAX_LINES = 40


@dataclass(frozen=True)
class Params:
    """The run's parameters (from alert labels): tenant, covered components, placeholder values."""

    tenant: str | None
    components: frozenset[str]
    values: dict[str, str] = field(default_factory=dict)

    def expand(self, text: str) -> str:
        """``{name}`` placeholders replaced by their values (validated at load time)."""
        return text.format_map(self.values)


@dataclass(frozen=True)
class StepResult:
    """What an executor reports for one step."""

    ok: bool
    lines: list[str] = field(default_factory=list)
    host: str | None = None
    details: dict = field(default_factory=dict)


class Executor(Protocol):
    """Runs the non-confirm steps (probe, ssh, playbook, tnoctl)."""

    def describe(self, step: Step, params: Params) -> str:
        """One line saying what the step runs and where (shown, confirmed, audited)."""
        ...

    def run(self, step: Step, params: Params) -> StepResult:
        """Run the step; raise TnoError for a failure to even start it."""
        ...


@dataclass
class Outcome:
    """What happened to one step (one audit record, one summary row)."""

    section: str
    step: str
    kind: str
    status: str  # ok | failed | skipped | would | declined
    changes: bool
    command: str = ""
    host: str | None = None
    reason: str = ""
    duration_seconds: float = 0.0


@dataclass
class Report:
    """The end of a run: every step's outcome and the exit code."""

    outcomes: list[Outcome]
    exit_code: int
    verdict: str


@dataclass
class Engine:
    """One run of one runbook."""

    runbook: Runbook
    executor: Executor
    params: Params
    lang: str = "fr"
    dry_run: bool = False
    ask: Callable[[str], bool] = lambda _question: False
    show: Callable[[str], None] = print
    record: Callable[[Outcome], None] = lambda _outcome: None
    sleep: Callable[[float], None] = time.sleep
    outcomes: list[Outcome] = field(default_factory=list)

    def _skip_reason(self, step: Step) -> str | None:
        if step.component is not None and step.component not in self.params.components:
            return f"not for this run (component {step.component})"
        if step.when:
            ref, wanted = WHEN_RE.match(step.when).groups()  # type: ignore[union-attr]
            done = next((o for o in self.outcomes if o.step == ref), None)
            if self.dry_run and done is not None and done.status == "would":
                return None  # described as "would run" (the condition cannot be known without running)
            if done is None or done.status not in ("ok", "failed"):
                return f"{step.when}: {ref} did not run"
            if done.status != wanted:
                return f"condition {step.when} is false"
        return None

    def _finish(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        self.record(outcome)
        return outcome

    def run(self) -> Report:
        """Run every section; return the report (never raises for a failed step)."""
        steps = [(section, step) for section, items in self.runbook.sections() for step in items]
        approved, current = False, ""
        for number, (section, step) in enumerate(steps, 1):
            if section != current:
                approved, current = False, section  # an approval never crosses sections
            self.show(f"[{number}/{len(steps)}] {section} {step.id}: {step.title.get(self.lang)}")
            outcome = self._one(section, step, approved)
            if step.kind == "confirm" and outcome.status in ("ok", "would"):
                approved = True
            self.show(f"    -> {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
            if outcome.status == "declined":
                return self._report(int(ExitCode.REFUSED), "stopped: not confirmed")
            if outcome.status == "failed" and expect(step) == "ok":
                return self._report(int(ExitCode.FAILED), f"stopped at {step.id}: the problem remains")
        if self.dry_run:
            found = [o.step for o in self.outcomes if o.status == "failed"]
            if found:
                verdict = f"dry run: diagnosis found {', '.join(found)} failing; nothing was changed"
                return self._report(int(ExitCode.FAILED), verdict)
            return self._report(int(ExitCode.OK), "dry run: diagnosis found nothing wrong")
        return self._report(int(ExitCode.OK), "ok: every check passed")

    def _one(self, section: str, step: Step, approved: bool) -> Outcome:
        base = Outcome(section, step.id, step.kind, "skipped", changes(step))
        reason = self._skip_reason(step)
        if reason is not None:
            base.reason = reason
            return self._finish(base)
        question = step.title.get(self.lang)
        if step.kind == "confirm":
            if self.dry_run:
                base.status, base.reason = "would", f"would ask: {question}"
            else:
                base.status = "ok" if self.ask(question) else "declined"
            return self._finish(base)
        base.command = self.executor.describe(step, self.params)
        if self.dry_run and (changes(step) or section == "mitigation"):
            base.status, base.reason = "would", f"would run: {base.command}"
            return self._finish(base)
        if changes(step) and not approved and not self.ask(f"{question}: {base.command}?"):
            base.status = "declined"
            return self._finish(base)
        return self._finish(self._execute(base, step))

    def _execute(self, base: Outcome, step: Step) -> Outcome:
        self.show(f"    $ {base.command}")
        started = time.monotonic()
        attempts = getattr(step, "attempts", 1)
        for attempt in range(1, attempts + 1):
            try:
                result = self.executor.run(step, self.params)
            except TnoError as exc:
                result = StepResult(False, [exc.message, *exc.details])
            if result.ok or attempt == attempts:
                break
            self.show(f"    (attempt {attempt}/{attempts} failed; retrying in {step.interval:g}s)")  # type: ignore[union-attr]
            self.sleep(step.interval)  # type: ignore[union-attr]
        base.duration_seconds = round(time.monotonic() - started, 3)
        base.host = result.host
        lines = result.lines
        for line in lines[:MAX_LINES]:
            self.show(f"    | {line}")
        if len(lines) > MAX_LINES:
            self.show(f"    | ... ({len(lines) - MAX_LINES} more lines)")
        base.status = "ok" if result.ok else "failed"
        if not result.ok and expect(step) == "any":
            base.reason = "finding recorded, continuing"
        return base

    def _report(self, code: int, verdict: str) -> Report:
        return Report(list(self.outcomes), code, verdict)
