"""The tno_backup role's client side (keys.yml + client.yml) in check + diff mode on localhost (issue 19).

Check mode writes nothing, so the real role runs against this machine: every task renders and runs
(tno_files, the host scripts with --check), the per-tenant files are in ONE tno_files diff, the vault
passphrases reach no diff, log or job event, and the whole side costs a fixed number of module
executions (bench/deploy_overhead.py's rule) whatever the number of tenants.
"""

from __future__ import annotations

import json
import runpy
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tnoctl import paths
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

SECRETS = {"givors": "s3cr3t-pass-givors", "bron": "s3cr3t-pass-bron", "saint_fons": "s3cr3t-pass-sf"}

PLAYBOOK = """\
- name: Backup keys and client (mail side), as playbooks/backup.yml
  hosts: mail1
  gather_facts: false
  tasks:
    - name: Per-tenant SSH keys (mail)
      ansible.builtin.include_role:
        name: tno_backup
        tasks_from: keys.yml
      vars:
        tno_backup_component: mail
    - name: Borgmatic, passphrases, agent, timers (mail)
      ansible.builtin.include_role:
        name: tno_backup
        tasks_from: client.yml
      vars:
        tno_backup_component: mail
"""


def _tenant(slug: str) -> dict[str, Any]:
    return {"slug": slug, "services": ["mail"], "placement": {"mail": "mail1"}, "mail_host": "mail1",
            "domains": [f"{slug}.example"], "mailboxes": [{"address": f"Contact@{slug}.example"}],
            "backup": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6},
            "drill_on_calendar": "Tue *-*-* 02:10:00 Europe/Paris"}


def _results(events: Path, task: str) -> list[dict[str, Any]]:
    """The `res` of every runner_on_ok event of ``task``."""
    found = []
    for path in sorted(events.glob("*.json")):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task") == task:
            found.append(data["res"])
    return found


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    if Path("/etc/borgmatic.d/givors.yaml").exists() or not Path("/usr/bin/python3").exists():
        pytest.skip("needs a machine that is not a backup client itself, with /usr/bin/python3")
    inventory = {"all": {
        "vars": {"ansible_python_interpreter": sys.executable, "tno_backup_host": "backup1",
                 "tno_tenants": [_tenant(slug) for slug in ("givors", "bron", "saint-fons")],
                 **{f"tno_vault_borg_{slug}": value for slug, value in SECRETS.items()}},
        "hosts": {"mail1": {"ansible_connection": "local"},
                  "backup1": {"ansible_host": "198.18.0.9", "__tno_backup_hostkey": "ssh-ed25519 AAAAtesthostkey"}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "pb.yml").write_text(textwrap.dedent(PLAYBOOK))
    return tmp_path


def test_check_mode_renders_every_tenant_in_one_call_hides_passphrases_and_writes_nothing(root: Path) -> None:
    call = PlaybookCall(playbook=str(root / "pb.yml"), check=True, diff=True)
    result = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="c1")
    assert result.success, [f.message for f in result.failed_tasks]
    changed = {c.task: c for c in result.changed_tasks}
    files = changed["Install the backup agent and write each tenant's borgmatic and agent configuration"]
    for slug in ("givors", "bron", "saint-fons"):  # every tenant's files in the one call's diff
        assert f"/etc/borgmatic.d/{slug}.yaml" in files.diff and f"/etc/tno-backup/tenants/{slug}.json" in files.diff
        assert f"archive_name_format: '{slug}-" in files.diff
    assert "198.18.0.9 ssh-ed25519 AAAAtesthostkey" in files.diff  # the pinned host key
    events = next((root / "state" / "runs" / "c1").rglob("job_events"))
    secret = _results(events, "Write each tenant's repository passphrase (from the vault)")
    assert secret == [{"censored": secret[0]["censored"]}]  # no_log: the event holds no path, no content
    repos = _results(events, "Initialise each tenant's repository, remove the configurations of tenants no longer "
                             "served here")
    assert json.loads(repos[0]["stdout"])["changes"] == ["init givors", "init bron", "init saint-fons"]
    assert repos[0]["changed"] is True  # honest in check mode: would initialise, initialised nothing
    # no passphrase anywhere: not in a diff, not in the job events, not in the runner's stdout
    for path in (root / "state").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(secret in text for secret in SECRETS.values()), path
    assert not Path("/etc/borgmatic.d/givors.yaml").exists()  # check mode wrote nothing
    # a fixed cost per host (bench rule): keys 1 + (apt 1, only when the keys read found a package missing)
    # + files 1 + passphrases 1 + repos 1 + (cron 1 | units 1 + timers 1), with three tenants (was 3 per
    # tenant for the keys alone)
    (keys,) = _results(events, "Generate one backup SSH key per tenant and read the public keys")
    missing = json.loads(keys["stdout"])["packages_missing"]
    apt = _results(events, "Install borg and borgmatic")
    assert len(apt) == (1 if missing else 0), (missing, apt)
    module_executions = runpy.run_path(str(paths.PROJECT_ROOT / "bench" / "deploy_overhead.py"))["module_executions"]
    counts = module_executions(events)
    assert counts["mail1"] == (6 if Path("/run/systemd/system").is_dir() else 5) + len(apt), counts
