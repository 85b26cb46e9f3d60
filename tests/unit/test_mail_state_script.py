"""roles/tno_mail/files/tno_mail_state.py: one read-only run for the Dovecot version, resolv.conf and the
OpenDKIM packages left (issue 19), run in-process with fake `dovecot` and `dpkg-query` on PATH."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hostscripts import load_script

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
    assert out == {"dovecot_version": "2.3.19.1", "resolv_conf": "nameserver 192.0.2.53\n", "installed": ["opendkim"]}
    assert module.installed([]) == []


def test_fails_with_one_line_without_dovecot(state: tuple[Any, Path]) -> None:
    module, bin_dir = state
    _fake(bin_dir, "dovecot", "#!/bin/sh\nexit 127\n")
    with pytest.raises(SystemExit, match=r"^tno_mail_state: dovecot --version failed"):
        module.main([])
