"""Mail manifest: Maildir++ folder names, computation, multiset comparison, JSON round trip."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tnoctl.hostagent import manifest


def _msg(home: Path, folder_dir: str, name: str, body: bytes, sub: str = "cur") -> None:
    d = home / folder_dir / sub if folder_dir else home / sub
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(body)


def _tree(root: Path) -> Path:
    home = root / "a.test" / "alice"
    _msg(home, "", "1.M1:2,S", b"hello\n")
    _msg(home, "", "2.M2", b"new mail\n", sub="new")
    _msg(home, ".Sent", "3.M3:2,S", b"sent\n")
    _msg(home, ".Archives.2025", "4.M4:2,", b"old\n")
    _msg(home, "", "5.M5", b"in flight\n", sub="tmp")
    (home / "dovecot.index.log").write_bytes(b"index")
    _msg(root / "b.test" / "bob", "", "6.M6:2,", b"hello\n")
    return root


def test_folder_names() -> None:
    assert manifest.folder_name("") == "INBOX"
    assert manifest.folder_name(".Sent") == "Sent"
    assert manifest.folder_name(".Archives.2025") == "Archives/2025"
    with pytest.raises(ValueError):
        manifest.folder_name("cur")


def test_compute_lists_every_message_with_hash_and_size(tmp_path: Path) -> None:
    entries = manifest.compute(_tree(tmp_path))
    assert [(e.mailbox, e.folder, e.size) for e in entries] == sorted([
        ("alice@a.test", "INBOX", 6), ("alice@a.test", "INBOX", 9), ("alice@a.test", "Sent", 5),
        ("alice@a.test", "Archives/2025", 4), ("bob@b.test", "INBOX", 6),
    ])
    hello = next(e for e in entries if e.mailbox == "bob@b.test")
    assert hello.sha256 == hashlib.sha256(b"hello\n").hexdigest()


def test_round_trip_and_counts(tmp_path: Path) -> None:
    entries = manifest.compute(_tree(tmp_path))
    text = manifest.dumps(entries, tenant="t")
    assert '"messages":5' in text and "hello" not in text  # hashes only, never content
    assert manifest.loads(text) == entries
    with pytest.raises(ValueError):
        manifest.loads('{"format": "other", "entries": []}')


def test_compare_detects_missing_and_altered(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    expected = manifest.compute(root)
    assert manifest.compare(expected, manifest.compute(root)).ok
    (root / "a.test" / "alice" / ".Sent" / "cur" / "3.M3:2,S").write_bytes(b"senT\n")  # same size, flipped
    result = manifest.compare(expected, manifest.compute(root))
    assert not result.ok and [e.folder for e in result.missing] == ["Sent"] and len(result.extra) == 1


def test_compare_allows_new_mail_and_renamed_files(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    expected = manifest.compute(root)
    home = root / "a.test" / "alice"
    (home / "cur" / "1.M1:2,S").rename(home / "cur" / "1.M1:2,RS")  # flags changed
    _msg(home, "", "9.M9", b"arrived after the backup\n", sub="new")
    result = manifest.compare(expected, manifest.compute(root))
    assert result.ok and result.checked == 5 and len(result.extra) == 1


def test_compare_with_dated_folder_and_mailbox_filter(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    expected = manifest.compute(source)
    live = tmp_path / "live" / "a.test" / "alice"
    for e_dir, sub, name, body in [(".R.INBOX", "cur", "x", b"hello\n"), (".R.INBOX", "new", "y", b"new mail\n"),
                                   (".R.Sent", "cur", "z", b"sent\n"), (".R.Archives.2025", "cur", "w", b"old\n")]:
        _msg(live, e_dir, name, body, sub=sub)
    actual = manifest.compute(tmp_path / "live")
    mapping = manifest.prefixed("R", ["INBOX", "Sent", "Archives/2025"])
    assert manifest.compare(expected, actual, mapping, {"alice@a.test"}).ok
    assert not manifest.compare(expected, actual, None, {"alice@a.test"}).ok
    assert not manifest.compare(expected, actual, mapping).ok  # bob missing


@given(st.lists(st.tuples(st.sampled_from(["a@x", "b@x"]), st.sampled_from(["INBOX", "Sent"]),
                          st.binary(max_size=8)), max_size=20))
def test_compare_is_a_multiset_check(items: list[tuple[str, str, bytes]]) -> None:
    entries = [manifest.Entry(m, f, hashlib.sha256(b).hexdigest(), len(b)) for m, f, b in items]
    assert manifest.compare(entries, list(reversed(entries))).ok
    if entries:
        assert not manifest.compare(entries, entries[1:]).ok


def test_cache_skips_unchanged_files_and_rehashes_changed_ones(tmp_path: Path, monkeypatch) -> None:
    root = _tree(tmp_path)
    cache: dict = {}
    first = manifest.compute(root, cache)
    assert first == manifest.compute(root) and len(cache) == 5
    calls: list[Path] = []
    real = manifest._sha256
    monkeypatch.setattr(manifest, "_sha256", lambda p: calls.append(p) or real(p))
    assert manifest.compute(root, cache) == first and calls == []  # nothing re-read
    changed = root / "b.test" / "bob" / "cur" / "6.M6:2,"
    changed.write_bytes(b"HELLO\n")  # same size and inode (never done by Maildir writers) ...
    os.utime(changed, ns=(10**9, 10**9))  # ... with a new mtime (timestamps are coarse): must be re-read
    (root / "a.test" / "alice" / ".Sent" / "cur" / "3.M3:2,S").unlink()
    again = manifest.compute(root, cache)
    assert calls == [changed] and len(cache) == 4
    assert next(e for e in again if e.mailbox == "bob@b.test").sha256 == hashlib.sha256(b"HELLO\n").hexdigest()
    assert again == manifest.compute(root)
