"""tno_monitoring's Rspamd check (tasks/check_rspamd.yml, part of `tnoctl check`) on localhost (issue 14).

The check reads <textfile dir>/tno_rspamd.prom as the metrics timer writes it: it passes when the file
says tno_rspamd_up 1 and was written within tno_monitoring_rspamd_metrics_max_age, and fails naming the
host when the controller did not answer (up 0: e.g. a wrong password, since the loopback no longer
skips it), when the file is stale (the timer stopped) or missing.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tnoctl import paths
from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

TASKS = paths.PROJECT_ROOT / "roles" / "tno_monitoring" / "tasks" / "check_rspamd.yml"
PLAYBOOK = f"""\
- name: The monitoring role's Rspamd check
  hosts: all
  gather_facts: false
  tasks:
    - name: Rspamd check
      ansible.builtin.include_tasks: {TASKS}
"""


def _prom(up: int, written: float) -> str:
    """A tno_rspamd.prom as tno-rspamd-metrics renders it (the tail that the check reads)."""
    return ("# TYPE rspamd_scanned_total counter\nrspamd_scanned_total 12\n"
            f"# TYPE tno_rspamd_up gauge\ntno_rspamd_up {up}\n"
            f"# TYPE tno_rspamd_last_run_timestamp_seconds gauge\ntno_rspamd_last_run_timestamp_seconds {written}\n")


def _run(tmp_path: Path, prom: str | None, run_id: str) -> tuple[bool, str]:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir(exist_ok=True)
    if prom is not None:
        (textfiles / "tno_rspamd.prom").write_text(prom)
    inventory = {"all": {"vars": {"ansible_python_interpreter": sys.executable,
                                  "tno_monitoring_textfile_dir": str(textfiles),
                                  "tno_monitoring_rspamd_metrics_max_age": 300,
                                  "tno_monitoring_rspamd_password_file": "/etc/tno/rspamd-controller.password"},
                         "hosts": {"mail7": {"ansible_connection": "local"}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "pb.yml").write_text(textwrap.dedent(PLAYBOOK))
    result = run_playbook(PlaybookCall(playbook=str(tmp_path / "pb.yml"), check=True), inventory=tmp_path / "hosts.yml",
                          state_dir=tmp_path / "state", run_id=run_id)
    return result.success, " ".join(f.message for f in result.failed_tasks)


def test_passes_when_the_controller_answered_recently(tmp_path: Path) -> None:
    ok, message = _run(tmp_path, _prom(1, time.time() - 20), "ok")
    assert ok, message


@pytest.mark.parametrize(("prom", "expected"), [
    (_prom(0, time.time()), "tno_rspamd_up is 0"),
    (_prom(1, time.time() - 3600), "is stale"),
    (None, "tno_rspamd.prom is missing"),
])
def test_fails_naming_the_host_when_down_stale_or_missing(tmp_path: Path, prom: str | None, expected: str) -> None:
    ok, message = _run(tmp_path, prom, "bad")
    assert not ok
    assert message.startswith("mail7: ") and expected in message, message
