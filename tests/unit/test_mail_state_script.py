"""roles/tno_mail/files/tno_mail_state.py: one read-only run for the Dovecot version, resolv.conf and the
OpenDKIM packages left, the vmail account and the paths asked (issue 19), run in-process with fake `dovecot` and
`dpkg-query` on PATH; and the role's skip conditions that use it and tno_common's package state."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from hostscripts import load_script
from role_render import role_vars

from tnoctl import paths

SCRIPT = paths.PROJECT_ROOT / "roles" / "tno_mail" / "files" / "tno_mail_state.py"

DPKG_QUERY = """\
#!/bin/sh
# dpkg-query -W -f FORMAT PACKAGE...: known packages with their status, rc 1 when one is unknown
shift 3
rc=0
for p in "$@"; do
  case $p in
    opendkim) echo "opendkim ii ";;
    opendkim-tools) echo "opendkim-tools rc ";;
    *) echo "dpkg-query: no packages found matching $p" >&2; rc=1;;
  esac
done
exit $rc
"""


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    _fake(bin_dir, "dpkg-query", DPKG_QUERY)
    module = load_script(SCRIPT, "tno_mail_state")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    monkeypatch.setattr(module, "RESOLV_CONF", resolv)
    return module, bin_dir


def test_reads_version_resolver_and_installed_packages_only(state: tuple[Any, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    module, bin_dir = state
    _fake(bin_dir, "dovecot", "#!/bin/sh\necho '2.3.19.1 (9b53102964)'\n")
    assert module.main(["opendkim", "opendkim-tools", "opendkim-unknown"]) == 0
    out = json.loads(capsys.readouterr().out)
    # config-files only (rc) and unknown packages are not installed, as package_facts saw them
    assert out == {"dovecot_version": "2.3.19.1", "resolv_conf": "nameserver 192.0.2.53\n", "installed": ["opendkim"],
                   "account": None, "exists": {}}
    assert module.installed([]) == []


def test_describes_the_account_and_the_paths_asked(state: tuple[Any, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    module, bin_dir = state
    _fake(bin_dir, "dovecot", "#!/bin/sh\necho 2.3.19.1\n")
    me = pwd.getpwuid(os.getuid())
    link = tmp_path / "default"
    link.symlink_to(tmp_path / "nowhere")  # a dangling link still exists for `file state=absent`
    assert module.main(["--account", me.pw_name, "--exists", str(link), "--exists", str(tmp_path / "gone"),
                        "opendkim"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["installed"] == ["opendkim"]
    assert out["account"]["user"] == {"uid": me.pw_uid, "gid": me.pw_gid, "home": me.pw_dir, "shell": me.pw_shell}
    try:
        same_name_group: int | None = grp.getgrnam(me.pw_name).gr_gid
    except KeyError:
        same_name_group = None
    assert out["account"]["group_gid"] == same_name_group
    assert out["exists"] == {str(link): True, str(tmp_path / "gone"): False}
    assert module.account("tno-no-such-account") == {"user": None, "group_gid": None}


def test_fails_with_one_line_without_dovecot(state: tuple[Any, Path]) -> None:
    module, bin_dir = state
    _fake(bin_dir, "dovecot", "#!/bin/sh\nexit 127\n")
    with pytest.raises(SystemExit, match=r"^tno_mail_state: dovecot --version failed"):
        module.main([])


def _role_expr(expr: str, variables: dict[str, Any]) -> Any:
    templar = Templar(loader=DataLoader(), variables={**role_vars("tno_mail"), **variables})
    return templar.template(trust_as_template(expr))


def test_apt_runs_only_for_a_missing_or_differently_pinned_package() -> None:
    """configure.yml's apt is skipped when tno_common's package state shows every spec installed (issue 19)."""
    base = role_vars("tno_mail")["__tno_mail_base_packages"]
    installed = {name: "1.0" for name in [*base, "nginx"]}
    missing = "{{ __tno_mail_packages_missing }}"
    assert _role_expr(missing, {"tno_common_host_packages": installed}) == []
    assert _role_expr(missing, {"tno_common_host_packages": {**installed, "postfix": "1.0"},
                                "tno_mail_packages": {"postfix": "3.7.11-0+deb12u1"}}) == ["postfix=3.7.11-0+deb12u1"]
    assert _role_expr(missing, {"tno_common_host_packages": {**installed, "postfix": "3.7.11-0+deb12u1"},
                                "tno_mail_packages": {"postfix": "3.7.11-0+deb12u1"}}) == []
    without_nginx = {k: v for k, v in installed.items() if k != "nginx"}
    assert _role_expr(missing, {"tno_common_host_packages": without_nginx}) == ["nginx"]
    # without tno_common's fact (upgrade, the role alone) every spec is left: apt runs as before
    assert _role_expr(missing, {}) == [*base, "nginx"]


def test_vmail_account_as_the_state_script_reports_it() -> None:
    assert _role_expr("{{ __tno_mail_vmail_account }}", {}) == {
        "uid": 5000, "gid": 5000, "home": "/srv/vmail", "shell": "/usr/sbin/nologin"}
