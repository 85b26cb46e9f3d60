"""One audited ``tnoctl runbook run``: load, check parameters, run the engine, record every step.

The run is one operation (:func:`tnoctl.actions.operation.operation`, verb ``runbook run``, its own
parameters); each step is its own record (verb ``runbook step``, details: runbook, run id, section,
step, kind, status, command, host), written as the step ends, so the log shows every step even when
the run is interrupted. Steps print as they run (``env.output.stdout``); the summary table and the
verdict come back in the :class:`~tnoctl.actions.operation.Outcome` for the verb to render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation, outcome_of
from tnoctl.errors import ExitCode
from tnoctl.runbook.engine import Engine, Report
from tnoctl.runbook.engine import Outcome as StepOutcome

SUMMARY_COLUMNS = ["#", "section", "step", "kind", "result", "host", "duration", "note"]


@dataclass(frozen=True)
class RunbookRequest:
    """`tnoctl runbook run`: which runbook, for which alert labels, how; ``ask`` answers confirmations."""

    name: str
    tenant: str | None
    component: str | None
    params: tuple[str, ...]
    dry_run: bool
    yes: bool
    lang: str
    ask: Callable[[str], bool]

    def audit_params(self) -> dict[str, object]:
        """The run's own parameters, as the audit record shows them."""
        return {"runbook": self.name, "tenant": self.tenant, "component": self.component, "param": self.params,
                "dry_run": self.dry_run, "yes": self.yes}


def _recorder(env: Env, name: str, run_id: str, tenants: list[str]) -> Callable[[StepOutcome], None]:
    def record(outcome: StepOutcome) -> None:
        hosts = [h for h in (outcome.host or "").split(",") if h]
        with operation(env, "runbook step", {"runbook": name, "step": outcome.step}, tenants=tenants,
                       hosts=hosts, lock=False) as op:
            op.details = {"runbook": name, "run_id": run_id, "section": outcome.section, "step": outcome.step,
                          "kind": outcome.kind, "status": outcome.status, "changes": outcome.changes,
                          "command": outcome.command, "reason": outcome.reason,
                          "step_seconds": outcome.duration_seconds}
            if outcome.status == "failed":
                op.fail(int(ExitCode.FAILED))
            elif outcome.status == "declined":
                op.fail(int(ExitCode.REFUSED))

    return record


def summary_rows(report: Report) -> list[list[object]]:
    """One row per step of the final summary table."""
    return [[i, o.section, o.step, o.kind, o.status.upper() if o.status == "failed" else o.status,
             o.host or "-", f"{o.duration_seconds:.1f}s" if o.duration_seconds else "-", o.reason]
            for i, o in enumerate(report.outcomes, 1)]


def run_session(env: Env, request: RunbookRequest) -> Outcome:
    """Run the runbook for the request's tenant; steps print as they go; the Outcome holds the summary."""
    from tnoctl.runbook.executors import ProjectExecutor
    from tnoctl.runbook.load import load_one
    from tnoctl.runbook.params import build_params, parse_pairs

    name = request.name
    book = load_one(name)
    inventory = env.inventory
    run_params = build_params(book, inventory, request.tenant, request.component, parse_pairs(request.params))
    tenants = [request.tenant] if request.tenant else []
    hosts = sorted({run_params.values[k] for k in ("mail_host", "office_host") if run_params.values[k]})
    redact = env.redact
    out = env.output.stdout

    def show(line: str) -> None:
        out.write(redact(line) + "\n")
        out.flush()

    with operation(env, "runbook run", request.audit_params(), tenants=tenants, hosts=hosts, lock=False) as op:
        executor = ProjectExecutor(env, op.id)
        note = " (dry run: nothing will change)" if request.dry_run else ""
        show(f"runbook {name}: {book.doc.title.get(request.lang)}{note}")
        show(book.doc.meaning.get(request.lang).strip())
        engine = Engine(book, executor, run_params, lang=request.lang, dry_run=request.dry_run, ask=request.ask,
                        show=show, record=_recorder(env, name, op.id, tenants))
        report = engine.run()
        op.details = {"runbook": name, "dry_run": request.dry_run, "verdict": report.verdict,
                      "steps": {o.step: o.status for o in report.outcomes}}
        if report.exit_code:
            op.fail(report.exit_code)
        return outcome_of(op, columns=SUMMARY_COLUMNS, rows=summary_rows(report), lines=[redact(report.verdict)])
