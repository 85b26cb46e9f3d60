"""Sieve scripts survive a backup and a tenant restore (issue 14 item 3), through the host agent's own code.

`stage` copies each mailbox's Sieve scripts (the Dovecot home ``<maildir>/home``: ``sieve/`` and the
``.dovecot.sieve`` link Pigeonhole activates) into the staging tree borgmatic archives; `restore_tenant`
puts them back into the home of each mailbox on the restoring host, from the tree `fetch_tenant` extracted
beforehand when it holds the same archive. Only what needs Dovecot or borg is
replaced (dsync, ``doveadm import``, ``borgmatic extract``, the manifest check): the copying is the
agent's. The archive of the old layout (scripts at the maildir root) restores into the home too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tnoctl.hostagent import agent

SCRIPT = 'require "vacation";\nvacation :days 1 "En congé";\n'


@pytest.fixture()
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> agent.TenantConfig:
    """One mailbox of one domain on a fake host; dsync, import, extract and the manifest check replaced."""
    monkeypatch.setattr(agent, "STATE_DIR", tmp_path / "state")
    (tmp_path / "state").mkdir()
    (tmp_path / "userdb").write_text("u@d.test:{SHA512-CRYPT}$6$x::::::\n")
    (tmp_path / "dkim" / "d.test").mkdir(parents=True)

    def dsync(address: str, dest: Path, uid: int, gid: int) -> None:  # an empty Maildir++ copy
        for sub in ("cur", "new", "tmp"):
            (dest / sub).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(agent, "_doveadm_backup", dsync)
    monkeypatch.setattr(agent, "_import", lambda address, source, parent: None)
    monkeypatch.setattr(agent, "_verify", lambda cfg, root, boxes, parent: {"ok": True, "checked": 0, "missing": 0})
    monkeypatch.setattr(agent, "_has_user", lambda name: False)
    return agent.TenantConfig(slug="t", borgmatic_config=str(tmp_path / "borgmatic.yaml"),
                              textfile_dir=str(tmp_path / "textfile"), domains=["d.test"], mailboxes=["u@d.test"],
                              staging=str(tmp_path / "staging"), vmail_dir=str(tmp_path / "vmail"),
                              vmail_uid=os.getuid(), vmail_gid=os.getgid(), userdb=str(tmp_path / "userdb"),
                              dkim_dir=str(tmp_path / "dkim"))


def _archive_as_extracted(cfg: agent.TenantConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`borgmatic extract` of the staging tree: the same tree under a scratch dir (what _extract returns)."""
    def extract(c: agent.TenantConfig, archive: str, paths: list[str]) -> Path:
        root = tmp_path / "scratch" / c.staging.strip("/")
        shutil.copytree(c.staging, root, symlinks=True)
        return root

    monkeypatch.setattr(agent, "_extract", extract)


def _restored(cfg: agent.TenantConfig, capsys: pytest.CaptureFixture[str]) -> Path:
    assert agent.restore_tenant(cfg, "t-2026-12-02") == 0, capsys.readouterr().out
    return Path(cfg.vmail_dir) / "d.test" / "u" / agent.DOVECOT_HOME


def test_sieve_scripts_and_the_active_link_survive_stage_then_tenant_restore(cfg, tmp_path, monkeypatch, capsys):
    home = Path(cfg.vmail_dir) / "d.test" / "u" / agent.DOVECOT_HOME
    (home / "sieve").mkdir(parents=True)
    (home / "sieve" / "vacation.sieve").write_text(SCRIPT)
    (home / ".dovecot.sieve").symlink_to("sieve/vacation.sieve")
    assert agent.stage(cfg) == 0
    staged = Path(cfg.staging) / "sieve" / "d.test" / "u"
    assert (staged / "sieve" / "vacation.sieve").read_text() == SCRIPT
    assert os.readlink(staged / ".dovecot.sieve") == "sieve/vacation.sieve"

    shutil.rmtree(Path(cfg.vmail_dir))  # the disaster: the restoring host has no mailbox yet
    _archive_as_extracted(cfg, tmp_path, monkeypatch)
    restored = _restored(cfg, capsys)
    assert (restored / "sieve" / "vacation.sieve").read_text() == SCRIPT
    assert os.readlink(restored / ".dovecot.sieve") == "sieve/vacation.sieve"  # still the active script
    assert (restored / ".dovecot.sieve").read_text() == SCRIPT
    assert not (tmp_path / "scratch").exists()  # the extracted tree is removed after the restore


def test_an_old_layout_archive_restores_its_scripts_into_the_dovecot_home(cfg, tmp_path, monkeypatch, capsys):
    root = Path(cfg.vmail_dir) / "d.test" / "u"  # scripts at the maildir root (home = root, before the move)
    (root / "sieve").mkdir(parents=True)
    (root / "sieve" / "vacation.sieve").write_text(SCRIPT)
    (root / ".dovecot.sieve").symlink_to("sieve/vacation.sieve")
    assert agent.stage(cfg) == 0
    shutil.rmtree(Path(cfg.vmail_dir))
    _archive_as_extracted(cfg, tmp_path, monkeypatch)
    restored = _restored(cfg, capsys)
    assert (restored / "sieve" / "vacation.sieve").read_text() == SCRIPT
    assert os.readlink(restored / ".dovecot.sieve") == "sieve/vacation.sieve"


def _borgmatic_extract_of_staging(cfg: agent.TenantConfig, calls: list[str]):
    """A fake ``borgmatic extract``: copies the staging tree under ``--destination``; records each archive."""
    def run(argv, **kwargs):
        assert argv[:3] == ["borgmatic", "--config", cfg.borgmatic_config] and argv[3] == "extract"
        calls.append(argv[argv.index("--archive") + 1])
        dest = Path(argv[argv.index("--destination") + 1])
        shutil.copytree(cfg.staging, dest / cfg.staging.strip("/"), symlinks=True)
        return subprocess.CompletedProcess(argv, 0, "", "")
    return run


def test_fetch_then_restore_extracts_once_and_a_tree_of_another_archive_is_never_used(cfg, tmp_path, monkeypatch,
                                                                                       capsys):
    """`fetch-tenant` (beside the deploy of restore --to-host) leaves the tree restore-tenant then imports."""
    home = Path(cfg.vmail_dir) / "d.test" / "u" / agent.DOVECOT_HOME
    (home / "sieve").mkdir(parents=True)
    (home / "sieve" / "vacation.sieve").write_text(SCRIPT)
    assert agent.stage(cfg) == 0
    shutil.rmtree(Path(cfg.vmail_dir))
    monkeypatch.setattr(agent, "RESTORE_ROOT", tmp_path / "restore")
    calls: list[str] = []
    monkeypatch.setattr(agent.subprocess, "run", _borgmatic_extract_of_staging(cfg, calls))

    assert agent.fetch_tenant(cfg, "t-old") == 0
    assert agent.fetch_tenant(cfg, "t-2026-12-02") == 0  # a later fetch replaces the earlier tree
    fetched = tmp_path / "restore" / "t.fetched"
    assert (fetched / agent.FETCHED_MARK).read_text() == "t-2026-12-02"
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["archive"] == "t-2026-12-02"
    assert sorted(p.name for p in (tmp_path / "restore").iterdir()) == ["t.fetched"]  # no scratch left

    restored = _restored(cfg, capsys)
    assert (restored / "sieve" / "vacation.sieve").read_text() == SCRIPT
    assert calls == ["t-old", "t-2026-12-02"]  # the restore extracted nothing itself
    assert not fetched.exists()  # removed after the import

    assert agent.fetch_tenant(cfg, "t-old") == 0
    shutil.rmtree(Path(cfg.vmail_dir))
    _restored(cfg, capsys)  # restores "t-2026-12-02": the fetched tree holds another archive
    assert calls == ["t-old", "t-2026-12-02", "t-old", "t-2026-12-02"]
    assert list((tmp_path / "restore").iterdir()) == []  # the stale tree was dropped, not imported


def test_the_agent_command_line_takes_fetch_tenant_with_its_arity(capsys):
    assert agent.main(["fetch-tenant", "t"]) == 2
    assert "fetch-tenant SLUG ARCHIVE" in capsys.readouterr().err
