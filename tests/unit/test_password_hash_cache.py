"""roles/tno_mail's tno_password_hash filter: a mailbox password is sha512-crypted only when it changes."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "roles" / "tno_mail" / "filter_plugins" / "tno_password.py"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("tno_password_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv(module.ENV, str(tmp_path / "hashes"))
    return module


def fresh_process(plugin):
    """What a new ansible worker sees: nothing loaded in memory, only the cache files."""
    plugin._loaded.clear()


def test_hashes_are_reused_when_unchanged(plugin, tmp_path):
    from ansible.plugins.filter.core import get_encrypted_password

    first = plugin.tno_password_hash("s3cret-one", "abcdefgh12345678", 5000, "mail1")
    assert first == get_encrypted_password("s3cret-one", "sha512", salt="abcdefgh12345678", rounds=5000)
    fresh_process(plugin)
    assert plugin.tno_password_hash("s3cret-one", "abcdefgh12345678", 5000, "mail1") == first
    assert plugin.COMPUTED[0] == 1
    changed = plugin.tno_password_hash("s3cret-two", "abcdefgh12345678", 5000, "mail1")
    assert changed != first and plugin.COMPUTED[0] == 2
    plugin.tno_password_hash("s3cret-one", "abcdefgh12345678", 6000, "mail1")  # new rounds: a new hash
    assert plugin.COMPUTED[0] == 3


def test_cache_holds_no_plaintext_and_a_private_key(plugin, tmp_path):
    plugin.tno_password_hash("s3cret-one", "abcdefgh12345678", 5000, "mail1")
    cache = tmp_path / "hashes"
    assert "s3cret-one" not in (cache / "mail1.txt").read_text()
    assert stat.S_IMODE((cache / ".key").stat().st_mode) == 0o600
    assert stat.S_IMODE((cache / "mail1.txt").stat().st_mode) == 0o600


def test_torn_lines_are_ignored_and_recomputed(plugin, tmp_path):
    value = plugin.tno_password_hash("pw", "abcdefgh12345678", 5000, "mail1")
    path = tmp_path / "hashes" / "mail1.txt"
    path.write_text(path.read_text()[:40] + "\n")
    fresh_process(plugin)
    assert plugin.tno_password_hash("pw", "abcdefgh12345678", 5000, "mail1") == value
    assert plugin.COMPUTED[0] == 2


def test_without_a_cache_dir_it_is_password_hash(plugin, monkeypatch):
    monkeypatch.delenv(plugin.ENV)
    plugin.tno_password_hash("pw", "abcdefgh12345678", 5000, "mail1")
    plugin.tno_password_hash("pw", "abcdefgh12345678", 5000, "mail1")
    assert plugin.COMPUTED[0] == 2
