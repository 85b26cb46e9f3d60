"""One audited ``tnoctl runbook run``: load, check parameters, run the engine, record every step.

The run is one audit operation (verb ``runbook run``); each step is its own record (verb
``runbook step``, details: runbook, run id, section, step, kind, status, command, host), written as
the step ends, so the log shows every step even when the run is interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tnoctl.errors import ExitCode
from tnoctl.runbook.engine import Engine, Outcome, Report

SUMMARY_COLUMNS = ["#", "section", "step", "kind", "result", "host", "duration", "note"]


def _argv(name: str, tenant: str | None, component: str | None, params: tuple[str, ...], dry_run: bool,
          yes: bool) -> list[str]:
    argv = ["runbook", "run", name]
    argv += ["--tenant", tenant] if tenant else []
    argv += ["--component", component] if component else []
    for pair in params:
        argv += ["--param", pair]
    return argv + (["--dry-run"] if dry_run else []) + (["--yes"] if yes else [])


def _recorder(app: Any, name: str, run_id: str, tenants: list[str]) -> Callable[[Outcome], None]:
    from tnoctl.state import audit

    def record(outcome: Outcome) -> None:
        hosts = [h for h in (outcome.host or "").split(",") if h]
        with audit.operation(app.state_dir, "runbook step", [name, outcome.step], tenants=tenants,
                             hosts=hosts) as op:
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


def run_session(app: Any, name: str, tenant: str | None, component: str | None, params: tuple[str, ...], *,
                dry_run: bool, yes: bool, lang: str, ask: Callable[[str], bool]) -> int:
    """Run runbook ``name`` for ``tenant``; print each step and a summary; return the exit code."""
    from tnoctl.config.load import load_inventory
    from tnoctl.runbook.executors import ProjectExecutor, redactor
    from tnoctl.runbook.load import load_one
    from tnoctl.runbook.params import build_params, parse_pairs
    from tnoctl.state import audit

    book = load_one(name)
    inventory = load_inventory(app.inventory, app.vault_password_file)
    run_params = build_params(book, inventory, tenant, component, parse_pairs(params))
    tenants = [tenant] if tenant else []
    hosts = sorted({run_params.values[k] for k in ("mail_host", "office_host") if run_params.values[k]})
    redact = redactor(app)

    def show(line: str) -> None:
        app.stdout.write(redact(line) + "\n")

    argv = _argv(name, tenant, component, params, dry_run, yes)
    with audit.operation(app.state_dir, "runbook run", argv, tenants=tenants, hosts=hosts) as op:
        executor = ProjectExecutor(app, inventory, op.id, redact)
        note = " (dry run: nothing will change)" if dry_run else ""
        show(f"runbook {name}: {book.doc.title.get(lang)}{note}")
        show(book.doc.meaning.get(lang).strip())
        engine = Engine(book, executor, run_params, lang=lang, dry_run=dry_run, ask=ask, show=show,
                        record=_recorder(app, name, op.id, tenants))
        try:
            report = engine.run()
        finally:
            executor.close()
        app.print_table(SUMMARY_COLUMNS, summary_rows(report))
        show(report.verdict)
        op.details = {"runbook": name, "dry_run": dry_run, "verdict": report.verdict,
                      "steps": {o.step: o.status for o in report.outcomes}}
        if report.exit_code:
            op.fail(report.exit_code)
        return report.exit_code
