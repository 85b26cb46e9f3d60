"""Deploy, plan and drift orchestration without hosts: the exact ordered playbook calls (kayobe style)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tests.unit.fakes import FakePlaybookRunner, Played, failed_result, make_env, ok_result, without_dns_updates
from tnoctl import paths
from tnoctl.actions import deploy, drift
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode
from tnoctl.run.ansible import ChangedTask
from tnoctl.state import audit, locks


@pytest.fixture()
def inv(tmp_path) -> Path:
    """A copy of the lab inventory (not the lab itself: no lab certificate refresh in unit tests)."""
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    return without_dns_updates(dest)  # the DNS step after a deploy: tests/unit/test_deploy_dns.py


def _hosts_of(env, slug: str) -> tuple[str, ...]:
    t = env.inventory.tenant(slug)
    return tuple(sorted({h for h in (t.placement.mail, t.placement.office) if h}))


def _one_change(env, slug: str = "givors") -> ChangedTask:
    return ChangedTask(env.inventory.tenant(slug).placement.mail, "tno_mail", "Write main.cf", None, "-a\n+b\n")


def test_deploy_with_confirm_runs_check_then_apply_under_the_lock(inv, tmp_path):
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    hosts = _hosts_of(env, "givors")
    runner.script = lambda call: ok_result(call, changed=[_one_change(env)] if call.check else [])
    seen = []

    def confirm(preview: deploy.Preview) -> bool:
        seen.append(preview)
        assert [s.tenant for s in locks.list_locks(env.state_dir)] == ["givors"]  # held while asking
        return True

    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), confirm=confirm))
    assert outcome.exit_code == ExitCode.OK
    vars_ = ("tno_action",)
    backup_limit = tuple(sorted({*hosts, env.inventory.platform.tno_backup_host}))
    assert runner.played == [Played("site.yml", hosts, vars_, True), Played("site.yml", hosts, vars_, False),
                             Played("backup.yml", backup_limit, vars_, False)]  # deploy sets up backups too
    assert runner.calls[0].diff and not runner.calls[1].diff
    assert seen[0].hosts == hosts
    [record] = audit.read(env.state_dir)
    assert (record["verb"], record["args"], record["result"]) == ("deploy", ["tenants=givors", "yes=false"], "ok")
    assert locks.list_locks(env.state_dir) == []
    assert [row[0] for row in outcome.rows] == list(hosts)


def test_deploy_whose_preview_shows_no_change_asks_nothing_and_skips_the_apply_pass(inv, tmp_path):
    runner = FakePlaybookRunner()  # the check pass reports no changed task
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    hosts = _hosts_of(env, "givors")
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), confirm=lambda p: pytest.fail("asked")))
    assert outcome.exit_code == ExitCode.OK
    backup_limit = tuple(sorted({*hosts, env.inventory.platform.tno_backup_host}))
    assert runner.played == [Played("site.yml", hosts, ("tno_action",), True),
                             Played("backup.yml", backup_limit, ("tno_action",), False)]  # no site.yml apply
    assert "nothing to change" in outcome.message and f"{hosts[0]}: no changes" in outcome.lines
    [record] = audit.read(env.state_dir)
    assert record["result"] == "ok" and record["details"]["applied"] is False
    assert [row[0] for row in outcome.rows] == list(hosts)


def test_deploy_refused_applies_nothing(inv, tmp_path):
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    runner.script = lambda call: ok_result(call, changed=[_one_change(env)])
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), confirm=lambda preview: False))
    assert outcome.exit_code == ExitCode.REFUSED
    assert [p.check for p in runner.played] == [True]
    assert audit.read(env.state_dir)[0]["result"] == "refused"


def test_deploy_yes_applies_directly_and_a_failed_host_exits_1(inv, tmp_path):
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail1", "Configure Postfix", "boom"))
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    outcome = deploy.run(env, deploy.DeployRequest())
    assert [(p.limit, p.check) for p in runner.played] == [((), False)]  # whole fleet: no limit
    assert outcome.exit_code == ExitCode.FAILED
    assert "mail1: failed: Configure Postfix: boom" in outcome.errors
    assert audit.read(env.state_dir)[0]["details"]["failed_hosts"] == ["mail1"]


def test_failed_preview_does_not_apply(inv, tmp_path):
    runner = FakePlaybookRunner(lambda call: failed_result(call, "mail1", unreachable=True))
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), confirm=lambda p: pytest.fail("asked")))
    assert outcome.exit_code == ExitCode.FAILED and len(runner.calls) == 1


def test_plan_attributes_changes_and_exits_1_when_pending(inv, tmp_path):
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    mail = env.inventory.tenant("givors").placement.mail
    domain = env.inventory.tenant("givors").domains[0]
    change = ChangedTask(mail, "tno_mail", "Mailboxes", f"mairie@{domain}", "-a\n+b\n")
    runner.script = lambda call: ok_result(call, _hosts_of(env, "givors"), [change])
    outcome = deploy.plan(env, deploy.PlanRequest(tenants=("givors",)))
    assert [p.check for p in runner.played] == [True]
    assert outcome.exit_code == ExitCode.FAILED and outcome.data["pending"] == 1
    assert f"{mail} / givors: 1 change(s)" in outcome.lines and f"  ~ Mailboxes [mairie@{domain}]" in outcome.lines
    assert deploy.plan(env, deploy.PlanRequest(tenants=("givors",), exit_zero=True)).exit_code == ExitCode.OK
    assert locks.list_locks(env.state_dir) == []  # plan takes no lock


def test_drift_is_one_check_run_recorded_per_tenant(inv, tmp_path):
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    outcome = drift.run(env, drift.DriftRequest(tenants=("givors",)))
    assert [(p.playbook, p.check) for p in runner.played] == [("site.yml", True)]
    assert outcome.exit_code == ExitCode.OK and outcome.data["drift"] is False
    assert ("givors", "mail") in env.store.latest_drift()


def _cli(env, *argv: str) -> tuple[int, str, str]:
    app = AppContext(inventory=env.inventory_path, stdout=io.StringIO(), stderr=io.StringIO(), _env=env)
    code = main(list(argv), app=app)
    return code, app.stdout.getvalue(), app.stderr.getvalue()


def test_cli_deploy_needs_yes_without_a_terminal(inv, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    runner = FakePlaybookRunner()
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    code, _, err = _cli(env, "deploy", "--tenant", "givors")
    assert code == ExitCode.INVALID and "deploy needs --yes" in err
    assert runner.calls == [] and audit.read(env.state_dir) == []


def test_cli_deploy_yes_renders_summary_and_artifacts(inv, tmp_path):
    env = make_env(inv, tmp_path / "state")
    code, out, err = _cli(env, "deploy", "--tenant", "givors", "--yes")
    assert code == 0 and env.inventory.tenant("givors").placement.mail in out
    assert "artifacts: /nonexistent/artifacts" in err


def test_cli_plan_prints_pending_count(inv, tmp_path):
    env = make_env(inv, tmp_path / "state")
    code, out, err = _cli(env, "plan", "--tenant", "givors")
    mail = env.inventory.tenant("givors").placement.mail
    assert code == 0 and f"{mail}: no changes" in out and "0 change(s) pending on 2 host(s)" in err


def test_cli_interrupted_deploy_exits_130_and_is_recorded(inv, tmp_path):
    def interrupt(call):
        raise KeyboardInterrupt

    env = make_env(inv, tmp_path / "state", playbooks=FakePlaybookRunner(interrupt))
    code, _, err = _cli(env, "deploy", "--tenant", "givors", "--yes")
    assert code == ExitCode.INTERRUPTED and "tnoctl: aborted" in err  # click turns Ctrl-C into Abort
    [record] = audit.read(env.state_dir)
    assert (record["result"], record["exit_code"]) == ("interrupted", 130)
    assert locks.list_locks(env.state_dir) == []
