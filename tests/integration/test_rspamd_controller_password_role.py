"""tno_mail's controller password tasks (tasks/controller_password.yml) run for real on localhost (issue 14).

The task file runs through ansible-runner as in a deploy, writing into a temporary directory: the first
run writes the hashed include and the root-only copy (changed, the Rspamd handler notified), the second
changes nothing, and the host's password (a vault variable) appears in no job event, no runner stdout,
no artifact: the tasks that see it are no_log and the script prints none. A host whose variable is
missing fails with a message naming the host and the variable and `tnoctl inventory secrets`.
"""

from __future__ import annotations

import grp
import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tnoctl import paths
from tnoctl.config.hostsecrets import rspamd_password_var
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

SECRET = "Integration-Rspamd-Secret-4242"
ROLE = paths.PROJECT_ROOT / "roles" / "tno_mail"

PLAYBOOK = """\
- name: The mail role's controller password tasks, as dkim.yml includes them
  hosts: all
  gather_facts: false
  tasks:
    - name: Controller password
      ansible.builtin.include_tasks: {tasks}
  handlers:
    - name: Rspamd would restart
      ansible.builtin.debug:
        msg: restart
      listen: Tno_mail rspamd changed
"""


def _events(root: Path, run_id: str) -> list[dict[str, Any]]:
    found = next((root / "state" / "runs" / run_id).rglob("job_events"))
    return [json.loads(p.read_text()) for p in sorted(found.glob("*.json"))]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    if shutil.which("rspamadm") is None:
        pytest.skip("needs rspamadm (Debian package rspamd) on this machine")
    try:
        grp.getgrnam("_rspamd")
    except KeyError:
        pytest.skip("needs Rspamd's group _rspamd (Debian package rspamd)")
    var = rspamd_password_var("mail1")
    inventory = {"all": {
        "vars": {"ansible_python_interpreter": sys.executable, var: SECRET,
                 "tno_mail_rspamd_password_vault": var,
                 "tno_mail_rspamd_password_file": str(tmp_path / "etc" / "rspamd-controller.password"),
                 "__tno_mail_rspamd_password_include": str(tmp_path / "rspamd" / "controller-password.inc"),
                 "__tno_mail_rspamd_password_script": str(ROLE / "files" / "tno_rspamd_controller_password.py"),
                 "__tno_mail_rspamd_files": {"changed_files": []}},
        "hosts": {"mail1": {"ansible_connection": "local"},
                  "mail2": {"ansible_connection": "local",
                            "tno_mail_rspamd_password_vault": rspamd_password_var("mail2")}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "pb.yml").write_text(textwrap.dedent(PLAYBOOK.format(tasks=ROLE / "tasks" / "controller_password.yml")))
    return tmp_path


def _no_secret_anywhere(root: Path) -> None:
    for path in (root / "state").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_sets_the_password_once_idempotently_and_never_shows_it(root: Path) -> None:
    call = PlaybookCall(playbook=str(root / "pb.yml"), limit=("mail1",), diff=True)
    first = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="r1")
    assert first.success, [f.message for f in first.failed_tasks]
    # no_log results carry no "changed" in their events (so no changed_tasks entry): the host's stats count it
    assert first.hosts["mail1"].changed == 1
    handlers = [e for e in _events(root, "r1") if e.get("event") == "runner_on_ok"
                and (e.get("event_data") or {}).get("task") == "Rspamd would restart"]
    assert len(handlers) == 1  # Rspamd restarts (after configtest) to load the new password
    plain = root / "etc" / "rspamd-controller.password"
    assert plain.read_text() == SECRET + "\n" and plain.stat().st_mode & 0o777 == 0o600
    include = (root / "rspamd" / "controller-password.inc").read_text()
    assert include.startswith('password = "$2$') and "enable_password" in include and SECRET not in include
    second = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="r2")
    assert second.success and second.hosts["mail1"].changed == 0
    assert (root / "rspamd" / "controller-password.inc").read_text() == include
    check = run_playbook(PlaybookCall(playbook=str(root / "pb.yml"), limit=("mail1",), check=True, diff=True),
                         inventory=root / "hosts.yml", state_dir=root / "state", run_id="r3")
    assert check.success and check.hosts["mail1"].changed == 0
    _no_secret_anywhere(root)


def test_missing_vault_variable_fails_naming_host_variable_and_command(root: Path) -> None:
    call = PlaybookCall(playbook=str(root / "pb.yml"), limit=("mail2",))
    result = run_playbook(call, inventory=root / "hosts.yml", state_dir=root / "state", run_id="m1")
    assert not result.success
    events = [e for e in _events(root, "m1") if e.get("event") == "runner_on_failed"]
    assert len(events) == 1
    assert events[0]["event_data"]["task"] == "Check that the host's Rspamd controller password is in the vault"
    assert events[0]["event_data"]["res"]["msg"] == (
        f"mail2: the vault has no Rspamd controller password {rspamd_password_var('mail2')}; "
        "create it with `tnoctl inventory secrets`.")
    assert not (root / "etc" / "rspamd-controller.password").exists()
    _no_secret_anywhere(root)
