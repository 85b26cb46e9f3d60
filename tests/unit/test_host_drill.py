"""The host-side scheduled drill (`tno-backup drill KEY`, tnoctl/hostagent/checks.py) against a fake borgmatic.

The fake answers `check`, `rlist --json` and `extract` like borgmatic 1.7 over a tiny mail tree, so
the drill's own logic (latest archive of the unit, extract, manifest compare, office XML check,
state file) runs for real; only borg is simulated.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tnoctl.hostagent import agent, checks, manifest

FAKE = '''#!{python}
import json, os, sys, shutil
from pathlib import Path
args = sys.argv[3:]  # after --config CONFIG
src = Path(os.environ["FAKE_ARCHIVE_ROOT"])
if args[0] == "check":
    sys.exit(int(os.environ.get("FAKE_CHECK_RC", "0")))
if args[:2] == ["rlist", "--json"]:
    print(json.dumps([{{"archives": json.loads(os.environ["FAKE_ARCHIVES"])}}]))
    sys.exit(0)
if args[0] == "extract":
    dest = Path(args[args.index("--destination") + 1])
    shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
    sys.exit(0)
sys.exit(2)
'''


@pytest.fixture()
def host(tmp_path, monkeypatch):
    """A fake host: borgmatic on PATH, agent dirs under tmp_path, an archive tree of one mailbox."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "borgmatic"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for name, sub in (("STATE_DIR", "state"), ("LOCK_DIR", "lock"), ("RESTORE_ROOT", "restore")):
        monkeypatch.setattr(agent, name, tmp_path / sub)
    (tmp_path / "state").mkdir()
    staging = "/var/lib/tno-backup/staging/givors"
    root = tmp_path / "archive" / staging.strip("/")
    box = root / "mail" / "givors.test" / "mairie" / "cur"
    box.mkdir(parents=True)
    (box / "1.msg:2,S").write_bytes(b"Subject: hello\n\nbody\n")
    (root / "manifest.json").write_text(manifest.dumps(manifest.compute(root / "mail"), tenant="givors"))
    office = tmp_path / "archive" / "var/lib/tno-backup/staging/givors.office"
    office.mkdir(parents=True)
    (office / "coolwsd.xml").write_text("<config><ssl><enable>false</enable></ssl></config>")
    monkeypatch.setenv("FAKE_ARCHIVE_ROOT", str(tmp_path / "archive"))
    monkeypatch.setenv("FAKE_ARCHIVES", json.dumps([
        {"name": "givors-2026-11-30T01:00:00.000000", "start": "2026-11-30T01:00:00.000000"},
        {"name": "givors-2026-12-01T01:00:00.000000", "start": "2026-12-01T01:00:00.000000"},
        {"name": "givors.office-2026-12-01T01:30:00.000000", "start": "2026-12-01T01:30:00.000000"}]))
    mail = agent.TenantConfig("givors", "/etc/borgmatic.d/givors.yaml", str(tmp_path), staging=staging)
    office_cfg = agent.TenantConfig("givors", "/etc/borgmatic.d/givors.office.yaml", str(tmp_path),
                                    component="office", staging="/var/lib/tno-backup/staging/givors.office")
    return tmp_path, root, mail, office_cfg


def _state(tmp_path: Path, key: str) -> dict:
    return json.loads((tmp_path / "state" / f"{key}.drill.json").read_text())


def test_mail_drill_extracts_the_latest_archive_and_compares_the_manifest(host, capsys):
    tmp_path, _root, mail, _office = host
    assert checks.drill(mail) == 0
    state = _state(tmp_path, "givors")
    assert state["ok"] and state["archive"] == "givors-2026-12-01T01:00:00.000000"
    assert (state["checked"], state["missing"]) == (1, 0)
    assert json.loads(capsys.readouterr().out) == state
    assert list((tmp_path / "restore").iterdir()) == []  # scratch removed
    assert checks.results(tmp_path / "none", tmp_path / "state") == {}  # no unit configured there


def test_mail_drill_fails_on_an_altered_message_and_on_a_failed_check(host, monkeypatch):
    tmp_path, root, mail, _office = host
    (root / "mail" / "givors.test" / "mairie" / "cur" / "1.msg:2,S").write_bytes(b"tampered")
    assert checks.drill(mail) == 1
    assert _state(tmp_path, "givors")["missing"] == 1
    monkeypatch.setenv("FAKE_CHECK_RC", "1")
    assert checks.drill(mail) == 1
    assert _state(tmp_path, "givors")["detail"].startswith("borgmatic check failed (rc 1)")


def test_office_drill_restores_coolwsd_xml(host):
    tmp_path, _root, _mail, office = host
    assert checks.drill(office) == 0
    state = _state(tmp_path, "givors.office")
    assert state["ok"] and state["archive"] == "givors.office-2026-12-01T01:30:00.000000"
    assert "coolwsd.xml restored" in state["detail"]


def test_drill_without_an_archive_fails(host, monkeypatch):
    tmp_path, _root, mail, _office = host
    monkeypatch.setenv("FAKE_ARCHIVES", "[]")
    assert checks.drill(mail) == 1
    assert _state(tmp_path, "givors")["detail"] == "no mail archive to drill"
