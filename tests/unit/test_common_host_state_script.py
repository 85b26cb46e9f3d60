"""roles/tno_common/files/tno_host_state.py: the installed packages, the time zone link and the locales
lineinfile would still change, in one read-only run (issue 19), in-process with a fake `dpkg-query`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hostscripts import load_script

from tnoctl import paths

SCRIPT = paths.PROJECT_ROOT / "roles" / "tno_common" / "files" / "tno_host_state.py"

DPKG_QUERY = """\
#!/bin/sh
printf 'postfix\\t3.7.11-0+deb12u1\\tinstall ok installed\\n'
printf 'coolwsd\\t24.04.1-1\\thold ok installed\\n'
printf 'opendkim\\t2.11.0\\tdeinstall ok config-files\\n'
printf 'half\\t1.0\\tinstall ok half-installed\\n'
"""


@pytest.fixture()
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dpkg-query"
    fake.write_text(DPKG_QUERY)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return load_script(SCRIPT, "tno_host_state")


def test_reports_installed_packages_link_and_pending_locales(script: Any, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Europe/Paris")
    locale_gen = tmp_path / "locale.gen"
    locale_gen.write_text("# fr_FR.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8\nde_DE.UTF-8 UTF-8\n# de_DE.UTF-8 UTF-8\n"
                          "# en_US.UTF-8 UTF-8\n")
    assert script.main([str(link), str(locale_gen), "fr_FR.UTF-8", "de_DE.UTF-8", "en_US.UTF-8", "it_IT.UTF-8"]) == 0
    out = json.loads(capsys.readouterr().out)
    # held packages count as installed; config-files only and half-installed ones do not (apt would act)
    assert out["packages"] == {"postfix": "3.7.11-0+deb12u1", "coolwsd": "24.04.1-1"}
    assert out["held"] == ["coolwsd"]
    assert out["link"] == "/usr/share/zoneinfo/Europe/Paris"
    # lineinfile's rule: the LAST line matching '^#? *<locale> ' must be exactly '<locale> UTF-8'
    assert out["locales_pending"] == ["de_DE.UTF-8", "en_US.UTF-8", "it_IT.UTF-8"]


def test_missing_link_and_locale_gen_leave_everything_to_do(script: Any, tmp_path: Path) -> None:
    plain = tmp_path / "localtime"
    plain.write_text("TZif")  # a copy of the zone file, not a link: `file state=link force` replaces it
    assert script.link_target(str(plain)) is None
    assert script.link_target(str(tmp_path / "absent")) is None
    assert script.locales_pending(tmp_path / "no-locale.gen", ["fr_FR.UTF-8"]) == ["fr_FR.UTF-8"]
    crlf = tmp_path / "crlf.gen"
    crlf.write_bytes(b"fr_FR.UTF-8 UTF-8\r\nde_DE.UTF-8 UTF-8")  # lineinfile rewrites both lines
    assert script.locales_pending(crlf, ["fr_FR.UTF-8", "de_DE.UTF-8"]) == ["fr_FR.UTF-8", "de_DE.UTF-8"]


def test_usage_error_without_the_two_paths(script: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert script.main(["/etc/localtime"]) == 2
    assert "usage: tno_host_state.py" in capsys.readouterr().err
