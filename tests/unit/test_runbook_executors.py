"""Runbook step executors use the process's Env: SSH via env.ssh, playbooks via env.playbooks, locks held."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.fakes import FakePlaybookRunner, FakeSsh, Played, make_env, without_dns_updates
from tnoctl import paths
from tnoctl.runbook.engine import Params
from tnoctl.runbook.executors import ProjectExecutor
from tnoctl.runbook.schema import PlaybookStep, SshStep, TnoctlStep
from tnoctl.state import audit, locks

TITLE = {"fr": "t", "en": "t"}


@pytest.fixture()
def setup(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, inv, ignore=shutil.ignore_patterns(".tno"))
    runner = FakePlaybookRunner()
    env = make_env(without_dns_updates(inv), tmp_path / "state", playbooks=runner, ssh=FakeSsh())
    tenant = env.inventory.tenant("givors")
    params = Params("givors", frozenset({"mail", "office"}),
                    {"tenant": "givors", "mail_host": tenant.placement.mail, "office_host": tenant.placement.office,
                     "backup_host": env.inventory.platform.tno_backup_host})
    return env, runner, ProjectExecutor(env, "run1"), params


def test_changing_ssh_step_runs_on_the_component_host_under_the_tenant_lock(setup):
    env, _, executor, params = setup
    seen = []
    env.ssh.results[params.values["mail_host"]] = lambda host, argv: (
        seen.append([s.tenant for s in locks.list_locks(env.state_dir)]) or (0, "restarted"))
    step = SshStep(kind="ssh", id="restart", title=TITLE, component="mail",
                   argv=["systemctl", "restart", "dovecot"], changes=True)
    result = executor.run(step, params)
    assert result.ok and result.host == params.values["mail_host"]
    assert env.ssh.commands == [(params.values["mail_host"], ("systemctl", "restart", "dovecot"))]
    assert seen == [["givors"]] and locks.list_locks(env.state_dir) == []


def test_playbook_step_is_one_check_call_on_the_tenant_hosts(setup):
    _env, runner, executor, params = setup
    step = PlaybookStep(kind="playbook", id="check", title=TITLE, check=True, tags=["postfix"])
    result = executor.run(step, params)
    hosts = tuple(sorted({params.values["mail_host"], params.values["office_host"]}))
    assert result.ok
    assert runner.played == [Played("site.yml", hosts, ("tno_action",), True)]
    assert runner.calls[0].tags == ("postfix",) and runner.run_ids == ["run1-check-check0"]


def test_tnoctl_step_calls_the_registered_action_not_the_cli(setup):
    env, runner, executor, params = setup
    step = TnoctlStep(kind="tnoctl", id="redeploy", title=TITLE, argv=["deploy", "--tenant", "{tenant}", "--yes"])
    result = executor.run(step, params)
    assert result.ok and result.lines[-1] == "(exit status 0)"
    assert [(p.playbook, p.check) for p in runner.played] == [("site.yml", False), ("backup.yml", False)]
    assert audit.read(env.state_dir)[-1]["args"] == ["tenants=givors", "yes=true"]
