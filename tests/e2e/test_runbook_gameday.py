"""Game days: Dovecot stopped on a lab mail host (issue 8), a failed backup fixed by its runbook (issue 17).

Needs root and the deployed lab (session fixtures `lab`, `fleet` and `backups`, tests/e2e/conftest.py
and fleet.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tnoctl import paths
from tnoctl.state import audit
from tnoctl.state.store import Store

pytestmark = [pytest.mark.root, pytest.mark.lab]

TENANT = "venissieux"
RUNBOOK = "TnoTenantEndpointDown"


def _dovecot(fleet, host: str) -> str:
    return fleet.ssh(host, "systemctl", "is-active", "dovecot", check=False).stdout.strip()


@pytest.fixture
def dovecot_stopped(fleet):
    """Dovecot stopped on the tenant's mail host for the test; started again whatever happens."""
    host = fleet.mail_host(TENANT)
    fleet.ssh(host, "systemctl", "stop", "dovecot")
    assert _dovecot(fleet, host) == "inactive"
    yield host
    fleet.ssh(host, "systemctl", "start", "dovecot", check=False)


def test_status_shows_every_tenant_of_the_host_down(fleet, dovecot_stopped: str) -> None:
    rc, out, err = fleet.tnoctl("status", "--json", "--no-queue")
    assert rc == 1, err
    states = {(c["tenant"], c["component"]): c["state"] for c in json.loads(out)["components"]}
    on_host = [t for t in fleet.tenants_with("mail") if fleet.mail_host(t) == dovecot_stopped]
    assert TENANT in on_host
    for tenant in fleet.tenants_with("mail"):
        # other tenants may carry a backup-freshness *warning* (never critical): only this host is down
        if tenant in on_host:
            assert states[(tenant, "mail")] == "critical", (tenant, states)
        else:
            assert states[(tenant, "mail")] in ("ok", "warning"), (tenant, states)


def test_dry_run_changes_nothing_and_says_what_it_would_do(fleet, dovecot_stopped: str) -> None:
    rc, out, err = fleet.tnoctl("runbook", "run", RUNBOOK, "--tenant", TENANT, "--dry-run", "--lang", "en")
    assert rc == 1, out + err
    assert f"would run: ssh {dovecot_stopped} systemctl restart postfix dovecot rspamd" in out
    assert "would ask: Restart Postfix, Dovecot and Rspamd" in out
    assert "nothing was changed" in out
    assert _dovecot(fleet, dovecot_stopped) == "inactive"


def test_game_day_runbook_restarts_dovecot_and_audits_every_step(fleet, dovecot_stopped: str) -> None:
    rc, out, err = fleet.tnoctl("runbook", "run", RUNBOOK, "--tenant", TENANT, "--yes", "--lang", "en")
    assert rc == 0, out + err
    assert _dovecot(fleet, dovecot_stopped) == "active"
    records = audit.read(fleet.state_dir, tenant=TENANT)
    run = next(r for r in reversed(records) if r["verb"] == "runbook run")
    assert run["result"] == "ok" and run["details"]["runbook"] == RUNBOOK
    steps = {r["details"]["step"]: r for r in records
             if r["verb"] == "runbook step" and r["details"]["run_id"] == run["id"]}
    assert set(steps) == set(run["details"]["steps"])
    assert steps["probe_mail"]["details"]["status"] == "failed"
    assert steps["mail_services"]["details"]["status"] == "failed"
    assert steps["confirm_mail_restart"]["details"]["status"] == "ok"
    assert steps["restart_mail"]["details"]["status"] == "ok"
    assert steps["restart_mail"]["hosts"] == [dovecot_stopped]
    assert steps["verify_mail"]["details"]["status"] == "ok"
    rc, out, err = fleet.tnoctl("status", "--tenant", TENANT, "--no-queue")
    assert rc == 0, out + err


def test_bad_runbook_fails_validation_with_file_and_field(fleet, tmp_path: Path) -> None:
    good = paths.PROJECT_ROOT / "runbooks" / f"{RUNBOOK}.yml"
    shutil.copy(good, tmp_path / good.name)
    text = good.read_text()
    bad_kind = text.replace("name: TnoTenantEndpointDown", "name: BadKind")
    bad_kind = bad_kind.replace("kind: probe", "kind: shell", 1)
    (tmp_path / "BadKind.yml").write_text(bad_kind)
    bad_verb = text.replace("name: TnoTenantEndpointDown", "name: BadVerb").replace(
        "  - id: verify_office\n    kind: probe\n    component: office\n    checks: [https, office]\n",
        "  - id: verify_office\n    kind: tnoctl\n    argv: [frobnicate, --now]\n")
    (tmp_path / "BadVerb.yml").write_text(bad_verb)
    rc, _, err = fleet.tnoctl("runbook", "validate", "--dir", str(tmp_path))
    assert rc == 2
    assert f"{tmp_path.name}/BadKind.yml: diagnosis[0].kind: 'shell' is not one of:" in err
    assert f"{tmp_path.name}/BadVerb.yml: mitigation[5].argv: unknown verb 'frobnicate'" in err
    rc, _, err = fleet.tnoctl("runbook", "validate")
    assert rc == 0, err


def test_backup_game_day_the_runbook_runs_the_backup_and_verifies_it(fleet, lab, backups) -> None:
    """Break a backup (backup host powered off), then follow TnoBackupFailed: backup, drill, probe."""
    slug = next(t for t in fleet.tenants_with("mail") if t not in fleet.tenants_with("office"))
    backup_host = fleet.inventory.platform.tno_backup_host
    lab.stop_host(backup_host)
    try:
        rc, _out, err = fleet.tnoctl("backup", "run", "--tenant", slug)
    finally:
        lab.restart_host(backup_host)
    assert rc == 1, err
    assert Store(fleet.state_dir).latest_backups()[(slug, "mail")].last_failed  # TnoBackupFailed fires

    rc, out, err = fleet.tnoctl("runbook", "run", "TnoBackupFailed", "--tenant", slug, "--yes", "--lang", "en")
    assert rc == 0, out + err
    status = Store(fleet.state_dir).latest_backups()[(slug, "mail")]
    assert not status.last_failed and status.last_verified_at  # the alert's condition is gone
    records = audit.read(fleet.state_dir, tenant=slug)
    run = next(r for r in reversed(records) if r["verb"] == "runbook run")
    steps = {r["details"]["step"]: r["details"]["status"] for r in records
             if r["verb"] == "runbook step" and r["details"]["run_id"] == run["id"]}
    assert steps["status"] == "failed"  # the diagnosis saw the failed backup
    assert (steps["backup"], steps["drill"], steps["verify"]) == ("ok", "ok", "ok")
    # the verbs the steps ran are audited as themselves, with their own parameters
    assert any(r["verb"] == "backup" and r["result"] == "ok" and r["time"] >= run["time"] for r in records)
    assert any(r["verb"] == "backup drill" and r["result"] == "ok" and r["time"] >= run["time"]
               for r in records)
