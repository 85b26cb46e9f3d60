"""Windows on deploy (issue 16 item 4): a restart of a tenant-facing service outside a window is refused (exit 4)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.fakes import FakePlaybookRunner, make_env, ok_result, without_dns_updates
from tnoctl import paths
from tnoctl.actions import deploy
from tnoctl.errors import ExitCode
from tnoctl.plan import deploy_windows
from tnoctl.run.ansible import ChangedTask
from tnoctl.state import audit

TUESDAY_NOON = datetime(2026, 12, 1, 11, 0, tzinfo=UTC).timestamp()  # 12:00 Europe/Paris, a Tuesday


@pytest.fixture()
def inv(tmp_path) -> Path:
    """The lab inventory with givors' window closed on Tuesday noon (Sunday night only)."""
    dest = tmp_path / "inv"
    shutil.copytree(paths.LAB_INVENTORY, dest, ignore=shutil.ignore_patterns(".tno"))
    path = dest / "tenants" / "givors.yml"
    path.write_text(path.read_text().replace("maintenance_window: Mon-Sun 00:00-24:00",
                                             "maintenance_window: Sun 02:00-05:00"))
    return without_dns_updates(dest)  # the DNS step after a deploy: tests/unit/test_deploy_dns.py


APPLY = [("site.yml", False), ("backup.yml", False)]  # a deploy also sets up the backup machinery


def _played(runner: FakePlaybookRunner) -> list[tuple[str, bool]]:
    return [(c.playbook, c.check) for c in runner.calls]


def _changes(host: str, *tasks: str) -> list[ChangedTask]:
    return [ChangedTask(host, "", task, None, "") for task in tasks]


def _runner(host: str, *tasks: str) -> FakePlaybookRunner:
    return FakePlaybookRunner(lambda call: ok_result(call, changed=_changes(host, *tasks) if call.check else ()))


def _office_of(inv: Path, tmp_path: Path, slug: str = "givors") -> str:
    env = make_env(inv, tmp_path / "probe-state")
    return env.inventory.tenant(slug).placement.office


def test_coolwsd_restart_outside_window_is_refused_with_yes(inv, tmp_path):
    office = _office_of(inv, tmp_path)
    runner = _runner(office, "Template coolwsd.xml", "Restart coolwsd", "Reload nginx")
    env = make_env(inv, tmp_path / "state", playbooks=runner, clock=lambda: TUESDAY_NOON)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)))
    assert outcome.exit_code == ExitCode.REFUSED
    assert [c.check for c in runner.calls] == [True]  # the check pass ran although --yes; nothing applied
    assert outcome.errors[0] == f"{office}: would restart coolwsd outside the window of givors (Sun 02:00-05:00)"
    [record] = audit.read(env.state_dir)
    assert record["result"] == "refused" and record["details"]["window_conflicts"][0]["service"] == "coolwsd"


def test_refusal_asks_nothing_and_the_override_applies(inv, tmp_path):
    office = _office_of(inv, tmp_path)
    runner = _runner(office, "Restart coolwsd")
    env = make_env(inv, tmp_path / "state", playbooks=runner, clock=lambda: TUESDAY_NOON)
    refused = deploy.run(env, deploy.DeployRequest(tenants=("givors",), confirm=lambda p: pytest.fail("asked")))
    assert refused.exit_code == ExitCode.REFUSED
    runner.calls.clear()
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), ignore_windows=True))
    assert outcome.exit_code == ExitCode.OK and _played(runner) == APPLY


def test_reloads_are_allowed_outside_the_window(inv, tmp_path):
    office = _office_of(inv, tmp_path)
    runner = _runner(office, "Reload nginx", "Reload Postfix", "Reload Dovecot")
    env = make_env(inv, tmp_path / "state", playbooks=runner, clock=lambda: TUESDAY_NOON)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)))
    assert outcome.exit_code == ExitCode.OK and _played(runner) == [("site.yml", True), *APPLY]


def test_open_windows_skip_the_check_pass_with_yes(inv, tmp_path):
    runner = _runner("office1", "Restart coolwsd")
    sunday_3am = datetime(2026, 12, 6, 2, 0, tzinfo=UTC).timestamp()  # 03:00 Paris
    env = make_env(inv, tmp_path / "state", playbooks=runner, clock=lambda: sunday_3am)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",)))
    assert outcome.exit_code == ExitCode.OK and _played(runner) == APPLY


def test_conflicts_only_name_tenants_served_by_the_restarted_service(inv, tmp_path):
    env = make_env(inv, tmp_path / "state")
    now = datetime.fromtimestamp(TUESDAY_NOON, UTC)
    givors = env.inventory.tenant("givors")
    mail, office = givors.placement.mail, givors.placement.office
    placed = {h: list(env.inventory.tenants_on_host(h)) for h in (mail, office)}
    # OpenDKIM restarts on the mail host: givors is served there; coolwsd on the mail host would not be
    found = deploy_windows.conflicts(_changes(mail, "Restart OpenDKIM"), placed, now)
    assert [(c.host, c.service, c.tenants) for c in found] == [(mail, "opendkim", ("givors (Sun 02:00-05:00)",))]
    assert deploy_windows.conflicts(_changes(mail, "Restart coolwsd", "Reload Postfix"), placed, now) == []


def test_deploy_sets_up_backups_and_says_how_to_retry_when_that_fails(inv, tmp_path):
    from tests.unit.fakes import failed_result

    runner = FakePlaybookRunner(lambda call: failed_result(call, "backup1", "Read the host key", "boom")
                                if call.playbook == "backup.yml" else ok_result(call))
    env = make_env(inv, tmp_path / "state", playbooks=runner)
    outcome = deploy.run(env, deploy.DeployRequest(tenants=("givors",), ignore_windows=True))
    assert outcome.exit_code == ExitCode.FAILED and _played(runner) == APPLY
    assert "backup1: failed: Read the host key: boom" in outcome.errors
    limit = " ".join(f"--host {h}" for h in runner.calls[1].limit)
    assert f"the backup machinery was not set up; retry with: tnoctl backup setup --yes {limit}" in \
        env.output.stderr.getvalue()
