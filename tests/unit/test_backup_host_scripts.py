"""The tno_backup role's host scripts (roles/tno_backup/files), run in-process on temp dirs (issue 19).

Each replaces a per-tenant loop of module executions by one run; each must stay honest in check mode
(report, change nothing), be idempotent (a second run reports nothing) and keep the old behaviour:
keys generated only when missing, repositories initialised once, departed configs of this component
only removed, timers enabled and started only when they are not.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from hostscripts import load_script

from tnoctl import paths

FILES = paths.PROJECT_ROOT / "roles" / "tno_backup" / "files"


def _script(name: str) -> Any:
    return load_script(FILES / f"{name}.py", name)


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture()
def no_chown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts give root the files they create; the tests may run as anyone."""
    monkeypatch.setattr(os, "chown", lambda *args: None)


@pytest.fixture()
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def _run(module: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert module.main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_keys_generated_once_public_halves_returned_check_mode_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_chown: None) -> None:
    keys = _script("tno_backup_keys")
    keydir = tmp_path / "etc" / "tno-backup" / "keys"
    checked = json.loads(_run(keys, ["--check", "mail1", str(keydir), "givors", "bron"], capsys))
    systemd = Path("/run/systemd/system").is_dir()
    assert checked == {"changes": [f"create {keydir}", f"generate {keydir}/givors", f"generate {keydir}/bron"],
                       "public": {}, "systemd": systemd}
    assert not keydir.exists()
    done = json.loads(_run(keys, ["mail1", str(keydir), "givors", "bron"], capsys))
    assert done["changes"] == checked["changes"] and sorted(done["public"]) == ["bron", "givors"]
    assert done["public"]["givors"].startswith("ssh-ed25519 ")
    assert done["public"]["givors"].endswith(" tno-backup:mail1:givors")
    assert oct(keydir.stat().st_mode & 0o777) == "0o700"
    again = json.loads(_run(keys, ["mail1", str(keydir), "givors", "bron"], capsys))
    assert again == {"changes": [], "public": done["public"], "systemd": systemd}  # idempotent: keys kept
    (keydir / "bron.pub").unlink()  # a lost public half is rebuilt from the private key
    rebuilt = json.loads(_run(keys, ["mail1", str(keydir), "givors", "bron"], capsys))
    assert rebuilt["changes"] == [f"write {keydir}/bron.pub"]
    assert rebuilt["public"]["bron"].split()[:2] == done["public"]["bron"].split()[:2]


def test_keys_read_which_client_packages_dpkg_has_not_installed_and_write_nothing_for_it(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str], no_chown: None) -> None:
    """The client side's apt runs only when this read reports a package missing (issue 19)."""
    _fake(fake_bin, "dpkg-query", 'shift 3; for p in "$@"; do case "$p" in\n'
          '  borgmatic) printf "borgmatic\\tdeinstall ok config-files\\n" ;;\n'
          '  nope) ;;\n  *) printf "%s\\tinstall ok installed\\n" "$p" ;;\nesac; done; exit 1\n')
    keys = _script("tno_backup_keys")
    keydir = tmp_path / "keys"
    out = json.loads(_run(keys, ["--check", "--package", "borgbackup", "--package", "borgmatic", "--package", "nope",
                                 "mail1", str(keydir)], capsys))
    assert out == {"changes": [f"create {keydir}"], "public": {}, "packages_missing": ["borgmatic", "nope"],
                   "systemd": Path("/run/systemd/system").is_dir()}
    assert not keydir.exists()
    converged = json.loads(_run(keys, ["--package", "borgbackup", "mail1", str(keydir)], capsys))
    assert converged["packages_missing"] == [] and keydir.is_dir()
    assert keys.main(["--package"]) == 2


def test_keys_refuse_a_unit_key_that_is_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _script("tno_backup_keys")
    assert keys.main(["--check", "mail1", str(tmp_path), "../x"]) == 2
    assert "bad unit key" in capsys.readouterr().err


def test_repositories_initialised_once_and_only_this_components_departed_configs_removed(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str], no_chown: None) -> None:
    repos = _script("tno_backup_repos")
    log = tmp_path / "borgmatic.log"
    _fake(fake_bin, "borgmatic", f'echo "$@" >> {log}\n')
    conf, state = tmp_path / "borgmatic.d", tmp_path / "state"
    conf.mkdir()
    state.mkdir()
    for name in ("givors.yaml", "bron.yaml", "gone.yaml", "gone.office.yaml", "givors.office.yaml"):
        (conf / name).write_text("x\n")
    (state / "bron.initialised").write_text("")
    argv = ["mail", str(conf), str(state), "givors", "bron"]
    checked = json.loads(_run(repos, ["--check", *argv], capsys))
    assert checked["changes"] == ["init givors", f"remove {conf}/gone.yaml"]
    assert isinstance(checked["systemd"], bool)
    assert not log.exists() and (conf / "gone.yaml").exists() and not (state / "givors.initialised").exists()
    done = json.loads(_run(repos, argv, capsys))
    assert done["changes"] == checked["changes"]
    assert log.read_text() == f"--config {conf}/givors.yaml init --encryption repokey-blake2\n"
    assert (state / "givors.initialised").read_bytes() == b""
    assert oct((state / "givors.initialised").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in conf.iterdir()) == ["bron.yaml", "givors.office.yaml", "givors.yaml",
                                                      "gone.office.yaml"]  # the office side's are not ours
    assert json.loads(_run(repos, argv, capsys))["changes"] == []  # idempotent
    office = json.loads(_run(repos, ["office", str(conf), str(state), "givors.office"], capsys))
    assert office["changes"] == ["init givors.office", f"remove {conf}/gone.office.yaml"]


def test_a_failed_init_stops_without_a_marker(tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str],
                                             no_chown: None) -> None:
    repos = _script("tno_backup_repos")
    _fake(fake_bin, "borgmatic", "echo 'Repository not reachable' >&2\nexit 2\n")
    conf, state = tmp_path / "borgmatic.d", tmp_path / "state"
    conf.mkdir()
    with pytest.raises(SystemExit, match="borgmatic init of givors failed"):
        repos.main(["mail", str(conf), str(state), "givors"])
    assert not (state / "givors.initialised").exists()
    assert "Repository not reachable" in capsys.readouterr().err


SYSTEMCTL = """\
state={state}
echo "$@" >> $state/calls
verb=$1; shift
case $verb in
  daemon-reload) ;;
  is-enabled|is-active)
    for unit in "$@"; do
      [ -e $state/known-$unit ] || continue  # like systemctl: an unknown unit prints to stderr only
      if [ -e $state/$verb-$unit ]; then [ $verb = is-enabled ] && echo enabled || echo active
      else [ $verb = is-enabled ] && echo disabled || echo inactive; fi
    done ;;
  enable) shift; for unit in "$@"; do touch $state/is-enabled-$unit $state/is-active-$unit; done ;;
  show) shift 3; for unit in "$@"; do [ -e $state/stale-$unit ] && echo yes || echo no; done ;;
esac
"""


def test_timers_enabled_and_started_only_when_needed_reload_first(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timers = _script("tno_units")  # symlink to roles/tno_common/files/tno_units.py
    state = tmp_path / "systemd"
    state.mkdir()
    _fake(fake_bin, "systemctl", SYSTEMCTL.format(state=state))
    units = ["tno-backup@givors.timer", "tno-backup-drill-givors.timer", "tno-backup@bron.timer"]
    for unit in units[:2]:
        (state / f"known-{unit}").touch()
    (state / f"is-enabled-{units[0]}").touch()  # enabled but stopped
    checked = _run(timers, ["--check", "--reload", *units], capsys)
    assert checked.splitlines() == ["daemon-reload", *[f"enable --now {unit}" for unit in units]]
    assert all(line.startswith(("is-enabled ", "is-active ")) for line in (state / "calls").read_text().splitlines())
    (state / "calls").unlink()
    done = _run(timers, ["--reload", *units], capsys)
    assert done == checked
    calls = (state / "calls").read_text().splitlines()
    assert calls[0] == "daemon-reload" and calls[-1] == "enable --now " + " ".join(units)
    for unit in units:
        (state / f"known-{unit}").touch()
    assert _run(timers, units, capsys) == ""  # all enabled and active: a no-op reports nothing


def test_a_unit_stale_on_disk_reloads_systemd_even_when_this_run_wrote_nothing(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A unit file written by an earlier run that failed before its reload (issue 19: the backup units are
    written in client.yml's first tno_files call, the timers enabled after the repositories)."""
    timers = _script("tno_units")
    state = tmp_path / "systemd"
    state.mkdir()
    _fake(fake_bin, "systemctl", SYSTEMCTL.format(state=state))
    unit = "tno-backup@givors.timer"
    for name in (f"known-{unit}", f"is-enabled-{unit}", f"is-active-{unit}"):
        (state / name).touch()
    argv = ["--reload-if-stale", "tno-backup@givors.service", unit]
    assert _run(timers, argv, capsys) == ""  # nothing stale: no reload, nothing to start
    calls = (state / "calls").read_text().splitlines()
    assert calls[0] == "show --property NeedDaemonReload --value tno-backup@givors.service tno-backup@givors.timer"
    (state / "stale-tno-backup@givors.service").touch()
    assert _run(timers, ["--check", *argv], capsys) == "daemon-reload\n"
    assert "daemon-reload" not in (state / "calls").read_text().splitlines()  # check mode: reported only
    assert _run(timers, argv, capsys) == "daemon-reload\n"
    assert (state / "calls").read_text().splitlines()[-3] == "daemon-reload"


def test_server_keys_read_the_host_key_and_the_current_lines_in_one_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = _script("tno_backup_server_keys")
    hostkey, authorized = tmp_path / "ssh_host_ed25519_key.pub", tmp_path / "authorized_keys"
    hostkey.write_text("ssh-ed25519 AAAAhost root@backup1\n")
    first = json.loads(_run(server, [str(hostkey), str(authorized)], capsys))
    assert first == {"hostkey": "ssh-ed25519 AAAAhost", "authorized_lines": []}  # no file yet: nothing to keep
    authorized.write_text('command="borg serve",restrict ssh-ed25519 AAAAm tno-backup:mail1:givors\n# x\n')
    again = json.loads(_run(server, [str(hostkey), str(authorized)], capsys))
    assert again["authorized_lines"] == ['command="borg serve",restrict ssh-ed25519 AAAAm tno-backup:mail1:givors',
                                         "# x"]


def test_units_wait_for_a_port_after_starting_and_not_in_check_mode_when_a_start_is_pending(
        tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--wait replaces the mail role's wait_for: after the start, until the port accepts, bounded."""
    import socket
    units = _script("tno_units")
    state = tmp_path / "systemd"
    state.mkdir()
    _fake(fake_bin, "systemctl", SYSTEMCTL.format(state=state))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    (state / "known-rspamd").touch()
    (state / "is-enabled-rspamd").touch()
    # check mode with a start pending: no wait (nothing would listen yet), the start is reported
    assert _run(units, ["--check", "--wait", "1:0", "rspamd"], capsys) == "enable --now rspamd\n"
    (state / "is-active-rspamd").touch()
    assert _run(units, ["--check", "--wait", f"{port}:5", "rspamd"], capsys) == ""  # waits, reports nothing
    listener.close()
    with pytest.raises(SystemExit, match=f"nothing listens on 127.0.0.1:{port} after 0 s"):
        units.main(["--wait", f"{port}:0", "rspamd"])
    assert units.parse(["--wait", "11332", ""]) == (False, False, None, [(11332, 300.0)], [])
