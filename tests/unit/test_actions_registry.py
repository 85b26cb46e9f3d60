"""Runbook `tnoctl` steps go through the action registry: strict argv, one action, plain-text outcome."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.fakes import FakePlaybookRunner, make_env, without_dns_updates
from tnoctl import paths
from tnoctl.actions import registry
from tnoctl.actions.operation import Outcome
from tnoctl.errors import InvalidInput
from tnoctl.runbook.load import load_all
from tnoctl.runbook.schema import TnoctlStep
from tnoctl.state import audit


@pytest.mark.parametrize(("argv", "error"), [
    (["deploy", "--tenant", "{tenant}", "--yes"], None),
    (["lock", "release", "{tenant}", "--yes"], None),
    (["history", "-t", "x", "--limit", "5"], None),
    (["upgrade", "status"], None),
    (["deploy", "--tenant", "x"], "add --yes"),
    (["deploy", "--bogus"], "No such option '--bogus'"),
    (["lock"], "needs a sub-command (one of: list, release)"),
    (["lock", "release"], "Missing argument 'TENANT'"),
    (["history", "--limit", "x"], "is not an integer"),
    (["deploi"], "unknown verb 'deploi'"),
])
def test_check(argv, error):
    found = registry.check(argv)
    assert found is None if error is None else error in (found or "")


def test_every_runbook_step_is_a_registered_verb():
    steps = [step for book in load_all().values() for _, section in book.sections() for step in section
             if isinstance(step, TnoctlStep)]
    assert len(steps) > 20
    for step in steps:
        assert registry.check(list(step.argv)) is None, step.argv


def test_deploy_step_calls_the_action_with_its_own_params(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    runner = FakePlaybookRunner()
    env = make_env(without_dns_updates(inv), tmp_path / "state", playbooks=runner)
    outcome = registry.call(env, ["deploy", "--tenant", "givors", "--yes"])
    assert outcome.ok and [(p.playbook, p.check) for p in runner.played] == [("site.yml", False),
                                                                              ("backup.yml", False)]
    [record] = audit.read(env.state_dir)
    assert (record["verb"], record["args"]) == ("deploy", ["tenants=givors", "yes=true"])
    text = registry.outcome_lines(outcome)
    assert text[0].split()[:2] == ["host", "tenants"] and text[-1].startswith("artifacts: ")


def test_unknown_verb_raises_invalid_input(tmp_path):
    with pytest.raises(InvalidInput):
        registry.call(make_env(paths.LAB_INVENTORY, tmp_path), ["rm", "-rf"])


def test_outcome_lines_align_the_table():
    lines = registry.outcome_lines(Outcome(columns=["a", "bb"], rows=[["xxx", None]], lines=["l"], message="m"))
    assert lines == ["a    bb", "xxx", "l", "m"]


def test_runbook_run_without_terminal_needs_yes_or_dry_run(tmp_path, monkeypatch):
    import io

    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    app = AppContext(stdout=io.StringIO(), stderr=io.StringIO(), state_dir_override=tmp_path)
    code = main(["runbook", "run", "TnoConfigDrift", "--tenant", "givors"], app=app)
    assert code == 2 and "runbook run needs --yes" in app.stderr.getvalue()
    assert audit.read(tmp_path) == []
