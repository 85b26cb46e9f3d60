"""Issue 4 acceptance 5 and 6: idempotent re-deploy, `plan` exit codes, an unreachable host."""

from __future__ import annotations

import json

import pytest


def _last_audit(fleet, verb: str) -> dict:
    rc, out, _err = fleet.tnoctl("history", "--json", "--limit", "50")
    assert rc == 0
    records = [r for r in json.loads(out) if r["verb"] == verb]
    assert records, f"no audit record for {verb}"
    return max(records, key=lambda r: (r["time"], r["id"]))


def test_second_deploy_changes_nothing_and_plan_is_clean(fleet):
    rc, out, err = fleet.tnoctl("deploy", "--yes")
    assert rc == 0, err[-3000:]
    record = _last_audit(fleet, "deploy")
    assert record["result"] == "ok"
    changed = {host: stats["changed"] for host, stats in record["details"]["hosts"].items()}
    assert set(changed) == {"mail1", "mail2", "office1", "office2", "backup1"}
    assert all(count == 0 for count in changed.values()), changed
    rc, out, err = fleet.tnoctl("plan")
    assert rc == 0, out[-3000:] + err[-2000:]
    assert "0 change(s) pending" in err


def test_plan_reports_pending_change_with_exit_1(fleet):
    fleet.ssh("mail2", "postconf", "-e", "smtpd_banner=$myhostname ESMTP hand-edited")
    try:
        rc, out, err = fleet.tnoctl("plan", "--host", "mail2")
        assert rc == 1, err[-2000:]
        assert "mail2" in out and "change(s)" in out  # --exit-zero's exit 0: tests/unit/test_actions_deploy.py
    finally:
        rc, _out, err = fleet.tnoctl("deploy", "--host", "mail2", "--yes")
        assert rc == 0, err[-2000:]


@pytest.fixture()
def backup1_stopped(fleet, lab):
    lab.stop_host("backup1")
    yield "backup1"
    lab.restart_host("backup1")


def test_unreachable_host_fails_the_deploy_but_not_the_others(fleet, backup1_stopped):
    rc, out, err = fleet.tnoctl("deploy", "--host", "office2", "--host", "backup1", "--yes")  # 2 hosts suffice
    assert rc == 1
    assert "backup1: unreachable" in err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip() and line.split()[0] in
            {"office2", "backup1"}}
    assert "UNREACHABLE" in rows["backup1"]
    assert rows["office2"].rstrip().endswith("ok"), rows["office2"]
    record = _last_audit(fleet, "deploy")
    assert record["result"] == "failed" and record["exit_code"] == 1
    assert record["details"]["failed_hosts"] == ["backup1"]
    assert record["details"]["hosts"]["backup1"]["unreachable"] == 1
    assert record["artifacts"]
