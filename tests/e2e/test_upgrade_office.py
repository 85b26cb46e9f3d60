"""Issue 7 acceptance 1-4 and issue 16 items 5 and 7 on the lab: office rollouts in waves, health gate with the
document-open probe, pre-flight, rollback, interrupt + resume, windows.

The lab repository holds builds of the office stand-in with Debian revisions, each as coolwsd plus its
lockstep companion coolwsd-kit: 24.04.10.1-1 (pinned), 24.04.11.1-1 (good), 24.04.12.1-1 (health
endpoints fail) and 24.04.13.1-1 (health endpoints answer, but no document opens). The tests run in file
order and leave the fleet as they found it: the last one rolls everything back to the pinned version
(itself the interrupt/resume acceptance), and a module fixture restores platform.yml's pin whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fleet import sigint_as_in_a_terminal

from tnoctl import paths
from tnoctl.state import audit

pytestmark = [pytest.mark.root, pytest.mark.lab]

GOOD, BROKEN = "24.04.11.1-1", "24.04.13.1-1"  # BROKEN: only opening documents fails
ABSENT = "24.04.99.1-1"
PLATFORM = paths.LAB_INVENTORY / "group_vars" / "all" / "platform.yml"
OFFICE_HOSTS = ("office1", "office2")


@pytest.fixture(scope="module", autouse=True)
def keep_pin(fleet: Any, backups: Any):
    """Whatever the tests do, platform.yml's pin and the office hosts end as they started.

    ``backups``: the rollouts take a tagged borg archive of each tenant's office configuration first.
    """
    original = PLATFORM.read_text()
    yield
    PLATFORM.write_text(original)
    if any(_installed(fleet, h) != fleet.office_version for h in OFFICE_HOSTS):
        fleet.tnoctl("upgrade", "office", "--to", fleet.office_version, "--waves", "100%", "--yes", "--no-pin")


def _installed(fleet: Any, host: str) -> str:
    return fleet.ssh(host, "dpkg-query", "-W", "-f", "${Version}", "coolwsd").stdout.strip()


def _package_set(fleet: Any, host: str) -> dict[str, str]:
    """Version and dpkg selection of coolwsd and its companion on ``host``."""
    out = fleet.ssh(host, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", "coolwsd",
                    "coolwsd-kit").stdout
    return {line.split()[0]: " ".join(line.split()[1:3]) for line in out.splitlines()}


def _started_at(fleet: Any, host: str) -> str:
    """When coolwsd last entered 'active' (monotonic): changes whenever it is stopped and started."""
    return fleet.ssh(host, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
                     "coolwsd").stdout.strip()


def test_absent_version_fails_in_preflight_before_any_service_stops(fleet: Any) -> None:
    before = {h: _started_at(fleet, h) for h in OFFICE_HOSTS}
    rc, out, err = fleet.tnoctl("upgrade", "office", "--to", ABSENT, "--waves", "canary,100%", "--yes")
    assert rc == 1, f"expected exit 1 (rc={rc}):\n{out}\n{err[-3000:]}"
    assert f"pre-flight: version {ABSENT} is not available" in err and f"coolwsd={ABSENT}" in err, err[-2000:]
    assert {h: _started_at(fleet, h) for h in OFFICE_HOSTS} == before  # coolwsd never stopped
    assert all(_installed(fleet, h) == fleet.office_version for h in OFFICE_HOSTS)
    assert not any(r["verb"] == "upgrade" and r["details"].get("to_version") == ABSENT
                   for r in audit.read(fleet.state_dir))  # no rollout started


def _reported_version(fleet: Any, slug: str) -> str:
    """productVersion of /hosting/capabilities, through the tenant's proxy name with TLS verified."""
    from tests.e2e.test_deploy_office import _get

    status, _headers, body = _get(fleet, slug, "/hosting/capabilities")
    assert status == 200, f"{slug}: capabilities answered {status}"
    return json.loads(body)["productVersion"]


def _status(fleet: Any, operation: str = "") -> dict[str, Any]:
    rc, out, err = fleet.tnoctl("upgrade", "status", *([operation] if operation else []), "--json")
    assert rc == 0, err
    return json.loads(out)


def _steps(fleet: Any, operation: str) -> list[tuple[str, str, str]]:
    """(host, step, result) of the operation's `upgrade step` audit records, in order."""
    return [(r["hosts"][0], r["details"]["step"], r["result"]) for r in audit.read(fleet.state_dir)
            if r["verb"] == "upgrade step" and r["details"].get("operation") == operation]


def test_good_version_rolls_out_canary_first_and_pins(fleet: Any) -> None:
    rc, out, err = fleet.tnoctl("upgrade", "office", "--to", GOOD, "--waves", "canary,100%", "--yes")
    assert rc == 0, f"upgrade failed (rc={rc}):\n{out}\n{err[-3000:]}"
    status = _status(fleet)
    assert status["state"] == "finished"
    assert [(h["host"], h["wave"], h["state"]) for h in status["hosts"]] == [("office1", 0, "done"),
                                                                             ("office2", 1, "done")]
    for slug in fleet.tenants_with("office"):
        assert _reported_version(fleet, slug) == GOOD.removesuffix("-1"), f"{slug} does not report {GOOD}"
    for host in OFFICE_HOSTS:  # the companion moved in lockstep; both are held at the pin
        assert _package_set(fleet, host) == {"coolwsd": f"{GOOD} hold", "coolwsd-kit": f"{GOOD} hold"}
        pref = fleet.ssh(host, "cat", "/etc/apt/preferences.d/tno-office.pref").stdout
        assert "Package: coolwsd coolwsd-kit\n" in pref and f"Pin: version {GOOD}\n" in pref
    rc, out, err = fleet.tnoctl("status", "--json")  # status runs the document-open probe too
    documents = {r["tenant"]: r for r in json.loads(out)["checks"] if r["check"] == "office_document"}
    assert sorted(documents) == sorted(fleet.tenants_with("office")), out[-2000:]
    assert all(r["ok"] for r in documents.values()), documents
    steps = _steps(fleet, status["id"])
    assert [s for s in steps if s[0] == "office1"] == [("office1", "snapshot", "ok"), ("office1", "apply", "ok"),
                                                      ("office1", "gate", "ok")]
    rc, out, _err = fleet.tnoctl("backup", "list", "--tenant", "venissieux", "--json")
    assert rc == 0 and f"tag-pre-upgrade-{status['id']}" in out  # the safety snapshot, tagged
    # issue 20: the office-only commune's host was upgraded too, after its safety archive was taken
    office_only = next(t.slug for t in fleet.inventory.tenants if t.services == ["office"])
    host = fleet.office_host(office_only)
    assert [s for s in steps if s[0] == host][:1] == [(host, "snapshot", "ok")]
    rc, out, err = fleet.tnoctl("backup", "list", "--tenant", office_only, "--json")
    assert rc == 0, err
    names = [a["name"] for a in json.loads(out)]
    assert f"{office_only}.office.tag-pre-upgrade-{status['id']}" in " ".join(names), names
    assert all(n.startswith(f"{office_only}.office") for n in names), names  # office configuration only
    assert steps.index(("office1", "gate", "ok")) < steps.index(("office2", "snapshot", "ok"))  # waves in order
    assert f"tno_office_version: {GOOD}" in PLATFORM.read_text()
    # issue 13: after a clean upgrade drift is clean (it reported DRIFT for every office tenant before)
    one_per_host = sorted({fleet.office_host(s): s for s in fleet.tenants_with("office")}.values())
    rc, out, err = fleet.tnoctl("drift", *[a for s in one_per_host for a in ("--tenant", s)])
    assert rc == 0, f"drift after a clean upgrade -> {rc}\n{out[-3000:]}\n{err[-3000:]}"


def test_broken_version_is_rolled_back_on_the_canary_and_office2_is_untouched(fleet: Any) -> None:
    from tnoctl.exporter import app as exporter_app

    rc, out, err = fleet.tnoctl("upgrade", "office", "--to", BROKEN, "--waves", "canary,100%",
                                "--gate-timeout", "20", "--yes")
    assert rc == 1, f"expected exit 1 (rc={rc}):\n{out}\n{err[-3000:]}"
    status = _status(fleet)
    states = {h["host"]: (h["state"], h["done_steps"]) for h in status["hosts"]}
    assert states["office1"] == ("rolled_back", ["snapshot", "apply", "rollback", "regate"])  # the gate failed
    assert states["office2"][0] == "skipped"
    assert _installed(fleet, "office1") == GOOD and _installed(fleet, "office2") == GOOD
    for slug in fleet.tenants_with("office"):
        assert _reported_version(fleet, slug) == GOOD.removesuffix("-1")
    assert ("office2", "apply", "ok") not in _steps(fleet, status["id"])
    # only the document-open probe failed: discovery and capabilities (at the new version) passed
    (gate,) = [r["details"]["detail"] for r in audit.read(fleet.state_dir) if r["verb"] == "upgrade step"
               and r["details"].get("operation") == status["id"] and r["details"]["step"] == "gate"]
    failures = gate.split(": ", 1)[1].split("; ")
    assert failures and all("/office_document: " in f and "kind=faileddocloading" in f for f in failures), gate
    assert f"tno_office_version: {GOOD}" in PLATFORM.read_text()  # a failed rollout never moves the pin

    from prometheus_client.parser import text_string_to_metric_families

    text = exporter_app.build(fleet.state_dir).collector.render()
    states = {(s.labels["tenant"], s.labels["state"]): s.value for fam in text_string_to_metric_families(text)
              if fam.name == "tnoctl_upgrade_state" for s in fam.samples}
    for slug in fleet.tenants_with("office"):
        rolled_back = fleet.office_host(slug) == "office1"
        assert states.get((slug, "rolled_back")) == (1.0 if rolled_back else None), f"{slug}: {states}"


def test_closed_maintenance_window_defers_the_host(fleet: Any, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(paths.LAB_INVENTORY, inventory, ignore=shutil.ignore_patterns(".tno"))
    tomorrow = time.strftime("%a", time.localtime(time.time() + 86400 * 2))
    corbas = inventory / "tenants" / "corbas.yml"
    corbas.write_text(corbas.read_text().replace("Mon-Sun 00:00-24:00", f"{tomorrow} 02:00-03:00"))
    argv = ["--inventory", str(inventory), "--state-dir", str(tmp_path / "state"), "upgrade", "office",
            "--to", fleet.office_version, "--hosts", "office2", "--waves", "100%", "--yes"]
    proc = subprocess.run([sys.executable, "-m", "tnoctl", *argv], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"outside maintenance window: corbas ({tomorrow} 02:00-03:00)" in proc.stdout + proc.stderr
    assert "--ignore-windows" in proc.stdout + proc.stderr
    assert _installed(fleet, "office2") == GOOD  # nothing was applied


def test_interrupted_rollout_resumes_without_redoing_a_host(fleet: Any) -> None:
    """Back to the pinned version: SIGINT once office1 is done, then --resume finishes office2."""
    argv = [sys.executable, "-m", "tnoctl", "--inventory", str(paths.LAB_INVENTORY), "--state-dir",
            str(fleet.state_dir), "upgrade", "office", "--to", fleet.office_version, "--waves", "1,100%", "--yes"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TNO_VAULT_PASSWORD_FILE": str(paths.LAB_INVENTORY / "vault-password")},
                            preexec_fn=sigint_as_in_a_terminal)
    try:
        operation = ""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            status = _status(fleet)
            if status["to_version"] == fleet.office_version and status["hosts"][0]["state"] == "done":
                operation = status["id"]
                break
            time.sleep(0.3)
        assert operation, "office1 never finished"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    stopped = _status(fleet, operation)
    assert stopped["state"] == "interrupted"
    assert stopped["hosts"][0]["state"] == "done"
    assert stopped["hosts"][1]["state"] in ("interrupted", "pending"), stopped
    assert f"tnoctl upgrade --resume {operation}" in output

    rc, out, err = fleet.tnoctl("upgrade", "--resume", operation, "--yes")
    assert rc == 0, f"resume failed (rc={rc}):\n{out}\n{err[-3000:]}"
    final = _status(fleet, operation)
    assert [h["state"] for h in final["hosts"]] == ["done", "done"]
    applies = [s for s in _steps(fleet, operation) if s[1] == "apply" and s[2] == "ok"]
    assert sorted(h for h, _s, _r in applies) == ["office1", "office2"]  # each host applied exactly once
    for host in OFFICE_HOSTS:
        assert _installed(fleet, host) == fleet.office_version
    assert f"tno_office_version: {fleet.office_version}" in PLATFORM.read_text()
