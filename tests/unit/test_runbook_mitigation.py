"""Runbooks that fix: every mitigation changes something, described by a dry run; `local` steps run here.

The rule (tnoctl/runbook/schema.py, docs/runbooks/README.md): a runbook's mitigation holds at least
one step that changes something, and a `tnoctl` step's `changes` agrees with the action registry.
Every shipped runbook is dry-run through the real step describer on a copy of the lab inventory:
each changing mitigation step is described ("would run ..."), nothing runs but read-only steps.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.unit.fakes import FakeSsh, make_env
from tnoctl import paths
from tnoctl.actions import registry
from tnoctl.errors import InvalidInput
from tnoctl.runbook.engine import Engine, Params, StepResult
from tnoctl.runbook.executors import ProjectExecutor
from tnoctl.runbook.load import load_all
from tnoctl.runbook.params import build_params
from tnoctl.runbook.refs import Catalog
from tnoctl.runbook.schema import LocalStep, changes, fixes

HEAD = """\
name: {name}
title: {{fr: Titre, en: Title}}
meaning: {{fr: Sens, en: Meaning}}
impact: {{fr: Impact, en: Impact}}
diagnosis:
  - id: look
    kind: probe
    checks: [imap]
    expect: any
    title: {{fr: Sonder, en: Probe}}
"""


def _catalog() -> Catalog:
    return Catalog(frozenset({"imap"}), frozenset({"deploy"}), frozenset({"always"}))


def _errors(tmp_path: Path, name: str, mitigation: str) -> list[str]:
    (tmp_path / f"{name}.yml").write_text(HEAD.format(name=name) + mitigation)
    try:
        load_all(tmp_path, _catalog())
    except InvalidInput as exc:
        return exc.details
    return []


def test_a_mitigation_that_only_looks_is_refused(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "OnlyLooks", """\
mitigation:
  - id: verify
    kind: probe
    checks: [imap]
    title: {fr: Vérifier, en: Verify}
  - id: status
    kind: tnoctl
    changes: false
    argv: [status, --tenant, "{tenant}"]
    title: {fr: État, en: Status}
""")
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path.name}/OnlyLooks.yml: mitigation: no step fixes anything")


def test_an_empty_mitigation_is_refused(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "NoMitigation", "mitigation: []\n")
    assert [e.split(": ", 2)[1] for e in errors] == ["mitigation"]


def test_a_tnoctl_step_changes_must_agree_with_the_registry(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "Mismatch", """\
mitigation:
  - id: run_backup
    kind: tnoctl
    changes: false
    argv: [backup, run, --tenant, "{tenant}"]
    title: {fr: Sauvegarder, en: Back up}
  - id: status
    kind: tnoctl
    argv: [status, --tenant, "{tenant}"]
    title: {fr: État, en: Status}
""")
    rel = f"{tmp_path.name}/Mismatch.yml"
    assert f"{rel}: mitigation[0].changes: this verb changes something: drop `changes: false`" in errors
    assert f"{rel}: mitigation[1].changes: this verb only reads: set `changes: false`" in errors


def test_a_fixing_mitigation_loads(tmp_path: Path) -> None:
    assert _errors(tmp_path, "Fixes", """\
mitigation:
  - id: run_backup
    kind: tnoctl
    argv: [backup, run, --tenant, "{tenant}"]
    title: {fr: Sauvegarder, en: Back up}
""") == []


def test_registry_knows_the_fixing_verbs() -> None:
    assert not registry.ACTIONS["backup run"].read_only
    assert not registry.ACTIONS["backup drill"].read_only
    assert registry.ACTIONS["backup verify"].read_only
    assert registry.check(["restore", "--tenant", "{tenant}", "--mailbox", "{mailbox}", "--yes"]) is None
    assert "add --yes" in (registry.check(["restore", "--tenant", "x", "--mailbox", "a@x.test"]) or "")
    assert registry.check(["backup", "run", "--tenant", "x", "--json"]) is None


# --------------------------------------------------------------------------- every shipped runbook
BOOKS = load_all()
PARAMS = {"mailbox": "alice@givors.test", "host": "mail1", "unit": "dovecot.service"}


class Describer:
    """The real describer (hosts, playbook plans, placeholders); read-only steps report the alert's finding.

    Diagnosis findings (``expect: any``) fail, as they do while the alert fires (so `when: X.failed`
    fixes are described); other read-only steps pass.
    """

    def __init__(self, real: ProjectExecutor) -> None:
        self.real = real
        self.ran: list[str] = []

    def describe(self, step, params: Params) -> str:
        return self.real.describe(step, params)

    def run(self, step, params: Params) -> StepResult:
        assert not changes(step), f"dry run ran changing step {step.id}"
        self.ran.append(step.id)
        return StepResult(getattr(step, "expect", "ok") == "ok", ["finding"])


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("rb")
    inv = root / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    return make_env(inv, root / "state", ssh=FakeSsh())


def _tenant_for(book, env) -> str | None:
    if not book.doc.tenant:
        return None
    both = [t.slug for t in env.inventory.tenants if {"mail", "office"} <= set(t.services)]
    return both[0]


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_every_runbook_dry_run_describes_a_fix(name: str, lab_env) -> None:
    book = BOOKS[name]
    fixing = [s for s in book.mitigation if fixes(s)]
    assert fixing, f"{name}: no mitigation step fixes anything"
    tenant = _tenant_for(book, lab_env)
    extra = {k: v for k, v in PARAMS.items() if k in book.doc.params}
    if tenant and "mailbox" in extra:
        t = lab_env.inventory.tenant(tenant)
        extra["mailbox"] = f"{t.mailboxes[0].local}@{t.mailboxes[0].domain or t.domains[0]}"
    params = build_params(book, lab_env.inventory, tenant, None, extra)
    describer = Describer(ProjectExecutor(lab_env, "dry"))
    shown: list[str] = []
    report = Engine(book, describer, params, lang="en", dry_run=True, show=shown.append).run()
    assert report.verdict.startswith("dry run: "), (name, report.verdict)  # ran to the end, changed nothing
    by_step = {o.step: o for o in report.outcomes}
    for step in fixing:
        outcome = by_step[step.id]
        if outcome.status == "skipped":  # a `when` on a diagnosis result, or another component
            continue
        assert outcome.status == "would" and outcome.reason.startswith("would run: "), (name, step.id, outcome)
        assert "{" not in outcome.command, f"{name}.{step.id}: placeholder left in {outcome.command!r}"
    assert any(by_step[s.id].status == "would" for s in fixing), f"{name}: the dry run describes no fix"
    assert not any(o.id in describer.ran for o in book.mitigation)


# --------------------------------------------------------------------------- local steps
def _local(argv: list[str], changes_: bool = False) -> LocalStep:
    return LocalStep(kind="local", id="here", title={"fr": "t", "en": "t"}, argv=argv, changes=changes_)


def test_local_step_runs_on_this_machine_without_a_shell(lab_env) -> None:
    executor = ProjectExecutor(lab_env, "run1")
    params = Params(None, frozenset(), {"tenant": ""})
    ok = executor.run(_local([sys.executable, "-c", "print('hello; $(id)')"]), params)
    assert ok.ok and ok.lines == ["hello; $(id)", "(exit status 0)"] and ok.host == "localhost"
    failed = executor.run(_local([sys.executable, "-c", "raise SystemExit(3)"]), params)
    assert not failed.ok and failed.details == {"rc": 3}
    missing = executor.run(_local(["/nonexistent/tno-command"]), params)
    assert not missing.ok and "/nonexistent/tno-command" in missing.lines[0]
    assert executor.describe(_local(["systemctl", "restart", "x y"]), params) == "local systemctl restart 'x y'"
