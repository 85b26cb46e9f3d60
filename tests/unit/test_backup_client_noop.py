"""tno_backup's client side on a no-op (issue 19): what keys.yml's read lets client.yml skip or merge.

keys.yml's script (read-only for this part) reports the client packages dpkg has not installed and
whether the host runs systemd: apt runs only when one is missing; with systemd the units are written in
client.yml's first tno_files call (one execution less than their own call), and the timer script reloads
systemd when one of them changed in that call. The expressions are evaluated as Ansible would, no host.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from role_render import role_vars

from tnoctl import paths

TASKS = paths.PROJECT_ROOT / "roles" / "tno_backup" / "tasks"
CLIENT = yaml.safe_load((TASKS / "client.yml").read_text())
UNITS = ["/etc/systemd/system/tno-backup@.timer", "/etc/systemd/system/tno-backup-drill-givors.timer"]


def _task(tasks: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(t for t in tasks if t["name"].startswith(prefix))


def _eval(expression: str, read: dict[str, Any], **extra: Any) -> Any:
    variables = {**role_vars("tno_backup"), "__tno_backup_keys": {"stdout": json.dumps(read)},
                 "__tno_backup_client_files": [{"dest": "/etc/borgmatic.d/givors.yaml"}],
                 "__tno_backup_unit_files": [{"dest": d} for d in UNITS], **extra}
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_apt_runs_only_when_the_read_found_a_client_package_missing() -> None:
    when = "{{ " + _task(CLIENT, "Install borg and borgmatic")["when"] + " }}"
    assert _eval(when, {"packages_missing": [], "systemd": True}) is False
    assert _eval(when, {"packages_missing": ["borgmatic"], "systemd": True}) is True


def test_with_systemd_the_units_are_in_the_first_call_and_a_changed_unit_reloads_systemd() -> None:
    files = _task(CLIENT, "Install the backup agent")["tno_files"]["files"]
    dests = [f["dest"] for f in _eval(files, {"packages_missing": [], "systemd": True})]
    assert dests == ["/etc/borgmatic.d/givors.yaml", *UNITS]
    assert [f["dest"] for f in _eval(files, {"packages_missing": [], "systemd": False})] == [dests[0]]
    assert not any("tno_files" in t for t in yaml.safe_load((TASKS / "schedule-systemd.yml").read_text()))
    (timers,) = yaml.safe_load((TASKS / "schedule-systemd.yml").read_text())
    cmd = timers["ansible.builtin.script"]["cmd"]
    base = {"ansible_check_mode": False, "__tno_backup_units": ["givors"]}

    def render(changed: list[str]) -> list[str]:
        """The command line as /bin/sh gets it: one line (a newline would start a second command)."""
        task_vars: dict[str, Any] = {**base, "__tno_backup_files_written": {"changed_files": changed}}
        for name, expression in timers["vars"].items():  # in order: __args uses __units_changed
            task_vars[name] = _eval(expression, {}, **task_vars)
        line = _eval(cmd, {}, **task_vars)
        assert "\n" not in line, f"the timer script's command spans lines: {line!r}"
        return line.split(" ")

    unchanged = render([dests[0]])
    assert "--reload" not in unchanged
    assert unchanged[-4:] == ["--reload-if-stale", "tno-backup-drill@givors.service", "tno-backup@givors.timer",
                              "tno-backup-drill-givors.timer"]
    assert "--reload-if-stale tno-backup@givors.service" in " ".join(unchanged)
    changed = render([UNITS[1]])
    assert changed[1] == "--reload"
    include = _task(CLIENT, "Schedule with systemd")
    assert include["when"] == "__tno_backup_systemd" and _task(CLIENT, "Schedule with cron")["when"] == (
        "not __tno_backup_systemd")
