"""The step engine with a fake executor: game day, problem remains, dry run, refusal, components, retries."""

from __future__ import annotations

from dataclasses import dataclass, field

from tnoctl.runbook.engine import Engine, Params, StepResult
from tnoctl.runbook.load import load_one
from tnoctl.runbook.refs import project_catalog

BOOK = load_one("TnoTenantEndpointDown", catalog=project_catalog())


@dataclass
class FakeFleet:
    """Mail host with Dovecot stopped until a restart step runs; records every step it runs."""

    dovecot_running: bool = False
    restart_fixes: bool = True
    ran: list[str] = field(default_factory=list)
    probe_failures_left: int = 0

    def describe(self, step, params: Params) -> str:
        return f"{step.kind} {step.id} for {params.tenant}"

    def run(self, step, params: Params) -> StepResult:
        self.ran.append(step.id)
        if step.id == "restart_mail" and self.restart_fixes:
            self.dovecot_running = True
        if step.kind == "probe" and step.component == "mail":
            if self.probe_failures_left:
                self.probe_failures_left -= 1
                return StepResult(False, ["FAIL mail/imap"])
            return StepResult(self.dovecot_running, ["mail/imap"])
        if step.id == "mail_services":
            return StepResult(self.dovecot_running, ["active", "inactive"], host="mail1")
        return StepResult(True, ["ok"])


def _engine(fleet: FakeFleet, components=("mail", "office"), answer: bool = True, dry_run: bool = False):
    asked: list[str] = []
    records: list = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answer

    engine = Engine(BOOK, fleet, Params("givors", frozenset(components), {"tenant": "givors"}), lang="en",
                    dry_run=dry_run, ask=ask, show=lambda _line: None, record=records.append,
                    sleep=lambda _s: None)
    return engine, asked, records


def test_game_day_diagnoses_restarts_after_confirm_and_verifies() -> None:
    fleet = FakeFleet()
    engine, asked, records = _engine(fleet)
    report = engine.run()
    assert report.exit_code == 0
    assert fleet.ran == ["probe_mail", "mail_services", "mail_journal", "probe_office", "office_services",
                         "restart_mail", "verify_mail", "verify_office"]
    assert asked == ["Restart Postfix, Dovecot and Rspamd on the mail host (a few seconds of interruption)"]
    status = {o.step: o.status for o in report.outcomes}
    assert status["probe_mail"] == "failed" and status["restart_mail"] == "ok"
    assert status["confirm_office_restart"] == "skipped" and status["restart_office"] == "skipped"
    assert [r.step for r in records] == [o.step for o in report.outcomes]  # every step is recorded


def test_problem_remains_stops_at_the_failed_verification_with_exit_1() -> None:
    fleet = FakeFleet(restart_fixes=False)
    report = _engine(fleet)[0].run()
    assert report.exit_code == 1
    assert report.outcomes[-1].step == "verify_mail" and report.outcomes[-1].status == "failed"
    assert "verify_office" not in fleet.ran


def test_dry_run_runs_only_read_only_diagnosis_and_describes_the_rest() -> None:
    fleet = FakeFleet()
    engine, asked, _ = _engine(fleet, dry_run=True)
    report = engine.run()
    assert fleet.ran == ["probe_mail", "mail_services", "mail_journal", "probe_office", "office_services"]
    assert not fleet.dovecot_running and asked == []
    status = {o.step: (o.status, o.reason) for o in report.outcomes}
    assert status["restart_mail"] == ("would", "would run: ssh restart_mail for givors")
    assert status["confirm_mail_restart"][0] == "would"
    assert status["restart_office"][0] == "skipped"  # office services were fine
    assert report.exit_code == 1 and "nothing was changed" in report.verdict


def test_refused_confirmation_stops_with_exit_4_and_changes_nothing() -> None:
    fleet = FakeFleet()
    report = _engine(fleet, answer=False)[0].run()
    assert report.exit_code == 4
    assert "restart_mail" not in fleet.ran and report.outcomes[-1].status == "declined"


def test_healthy_tenant_component_office_only() -> None:
    fleet = FakeFleet(dovecot_running=True)
    engine, asked, _ = _engine(fleet, components=("office",))
    report = engine.run()
    assert report.exit_code == 0 and asked == []
    assert fleet.ran == ["probe_office", "office_services", "verify_office"]


def test_a_read_only_step_is_retried() -> None:
    fleet = FakeFleet(dovecot_running=True, probe_failures_left=3)
    report = _engine(fleet)[0].run()
    # probe_mail (expect any) fails once; verify_mail fails twice then passes on its third attempt of 5
    assert fleet.ran.count("verify_mail") == 3
    assert report.exit_code == 0


def test_drift_runbook_confirm_approves_the_deploy_then_verifies() -> None:
    drift = load_one("TnoConfigDrift", catalog=project_catalog())
    fleet = FakeFleet()
    fleet_run = fleet.run

    def run(step, params):
        result = fleet_run(step, params)
        return StepResult(step.id != "drift", result.lines)

    fleet.run = run  # type: ignore[method-assign]
    asked: list[str] = []
    engine = Engine(drift, fleet, Params("givors", frozenset({"mail"}), {}), lang="en",
                    ask=lambda q: asked.append(q) or True, show=lambda _l: None)
    report = engine.run()
    assert report.exit_code == 0
    assert fleet.ran == ["drift", "diff", "history", "deploy", "verify"]
    assert len(asked) == 1  # the confirm step approves the deploy that follows


def test_a_changing_step_without_a_confirm_asks_for_itself() -> None:
    book = load_one("TnoUpgradeStuck", catalog=project_catalog())
    fleet = FakeFleet(dovecot_running=True)
    asked: list[str] = []
    bare = type(book)(book.doc, book.diagnosis, book.mitigation[1:], book.path)  # drop the confirm step
    engine = Engine(bare, fleet, Params("givors", frozenset({"mail"}), {}), lang="en",
                    ask=lambda q: asked.append(q) or False, show=lambda _l: None)
    report = engine.run()
    assert asked == ["Release the lock: tnoctl release for givors?"]
    assert report.exit_code == 4 and "release" not in fleet.ran
