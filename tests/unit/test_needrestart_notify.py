"""needrestart's user notices are off before it restarts anything (roles/tno_common/tasks/upgrade.yml).

Why: needrestart writes the list of old binaries to the stdin of each notify.d hook for every user
session still running them (the operator's SSH session, always). 200-write exits at once for a session
without a terminal; when it wins the race needrestart dies of SIGPIPE (exit -13) after restarting every
service, and `tnoctl upgrade os` rolled a healthy host back (seen on office2 in a CI run).
"""

from __future__ import annotations

from pathlib import Path

import yaml

UPGRADE = Path(__file__).resolve().parents[2] / "roles" / "tno_common" / "tasks" / "upgrade.yml"


def _names(tasks: list[dict]) -> list[str]:
    return [task.get("name", "") for task in tasks]


def test_needrestart_conf_disables_notices_before_the_restart_step() -> None:
    tasks = yaml.safe_load(UPGRADE.read_text())
    names = _names(tasks)
    configure = names.index("Configure needrestart (no notices to user sessions)")
    restart = names.index("Restart the services that still run replaced libraries")
    assert configure < restart
    files = tasks[configure]["tno_files"]["files"]
    assert [f["dest"] for f in files] == ["/etc/needrestart/conf.d/50-tno.conf"]  # needrestart.conf reads conf.d/*.conf
    lines = [line.strip() for line in files[0]["content"].splitlines() if not line.lstrip().startswith("#")]
    assert "$nrconf{sendnotify} = 0;" in lines
