"""The mail manifest: one entry per message (mailbox, folder, size, SHA-256) of a Maildir++ tree.

Why a manifest: a backup is only proven by a restore, and "every message is back, byte-identical"
needs a list of what the archive must contain that does not depend on file names (Dovecot renames
message files when flags change, and a restore through ``doveadm import`` writes new names). So a
message is identified by its content hash, and comparison is a multiset comparison per mailbox and
folder. The manifest never holds a subject, a sender or any message content: only hashes and sizes.

Layout read: ``<root>/<domain>/<local>/`` is a mailbox home in Maildir++ form (``cur``/``new`` =
INBOX, ``.Sent`` = Sent, ``.a.b`` = a/b). Standard library only: this file also runs on the hosts
(``python3 manifest.py compute ROOT > manifest.json``; ``compare MANIFEST ROOT``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "tno-mail-manifest/1"
_SKIP_DIRS = {"tmp", "sieve"}


@dataclass(frozen=True, order=True)
class Entry:
    """One message: which mailbox and folder it is in, its size and the SHA-256 of its bytes."""

    mailbox: str
    folder: str
    sha256: str
    size: int


@dataclass
class Comparison:
    """Result of comparing a manifest with a tree: messages missing, or present only in the tree."""

    missing: list[Entry] = field(default_factory=list)
    extra: list[Entry] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        """True when every manifest message is present, byte-identical (extra messages are allowed)."""
        return not self.missing


def folder_name(maildir_dir: str) -> str:
    """Maildir++ directory name to IMAP folder name: ``""`` -> INBOX, ``.Sent.2025`` -> ``Sent/2025``."""
    if maildir_dir in ("", "."):
        return "INBOX"
    if not maildir_dir.startswith("."):
        raise ValueError(f"not a Maildir++ folder directory: {maildir_dir!r}")
    return maildir_dir[1:].replace(".", "/")


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _folders(home: Path) -> list[tuple[str, Path]]:
    """(folder, maildir path) of a mailbox home: INBOX plus every ``.Name`` directory with a ``cur``."""
    out = [("INBOX", home)] if (home / "cur").is_dir() or (home / "new").is_dir() else []
    for child in sorted(home.iterdir()):
        is_folder = child.is_dir() and child.name.startswith(".") and child.name not in (".", "..")
        if is_folder and ((child / "cur").is_dir() or (child / "new").is_dir()):
            out.append((folder_name(child.name), child))
    return out


Cache = dict[str, list]  # path -> [size, mtime_ns, ctime_ns, inode, sha256]


def _hash_cached(file: Path, cache: Cache | None, seen: Cache | None) -> tuple[str, int]:
    """SHA-256 and size of ``file``, reused from ``cache`` when (size, mtime, ctime, inode) are unchanged.

    Maildir message files are written once and renamed, never rewritten in place, and ctime cannot
    be set from user space: a matching signature means the same bytes. ``seen`` collects the
    signatures of this pass (the next cache).
    """
    if cache is None:
        return _sha256(file)
    st = file.stat()
    sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    hit = cache.get(str(file))
    digest, size = (hit[4], st.st_size) if isinstance(hit, list) and hit[:4] == sig else _sha256(file)
    if seen is not None:
        seen[str(file)] = [*sig, digest]
    return digest, size


def mailbox_entries(home: Path, mailbox: str, cache: Cache | None = None, seen: Cache | None = None) -> list[Entry]:
    """Every message of one mailbox home (``cur`` and ``new``; ``tmp`` holds deliveries in flight)."""
    entries: list[Entry] = []
    for folder, path in _folders(home):
        for sub in ("cur", "new"):
            directory = path / sub
            if not directory.is_dir():
                continue
            for name in os.listdir(directory):
                file = directory / name
                if name.startswith(".") or not file.is_file():
                    continue
                digest, size = _hash_cached(file, cache, seen)
                entries.append(Entry(mailbox, folder, digest, size))
    return sorted(entries)


def compute(root: Path, cache: Cache | None = None) -> list[Entry]:
    """Entries of every mailbox under ``root/<domain>/<local>``, sorted.

    With ``cache`` (see :func:`_hash_cached`), unchanged files are not read again, and ``cache`` is
    replaced in place by the signatures of the files seen now (vanished files drop out).
    """
    entries: list[Entry] = []
    seen: Cache | None = {} if cache is not None else None
    if root.is_dir():
        for domain in sorted(p for p in root.iterdir() if p.is_dir()):
            for home in sorted(p for p in domain.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS):
                entries.extend(mailbox_entries(home, f"{home.name}@{domain.name}", cache, seen))
    if cache is not None and seen is not None:
        cache.clear()
        cache.update(seen)
    return sorted(entries)


def dumps(entries: list[Entry], **meta: object) -> str:
    """The manifest as JSON text: format, optional metadata, counts and the sorted entries."""
    doc = {
        "format": FORMAT,
        **meta,
        "messages": len(entries),
        "bytes": sum(e.size for e in entries),
        "entries": [[e.mailbox, e.folder, e.size, e.sha256] for e in sorted(entries)],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"


def loads(text: str) -> list[Entry]:
    """Parse a manifest; ValueError when it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a tno mail manifest")
    return [Entry(str(m), str(f), str(h), int(s)) for m, f, s, h in doc["entries"]]


def compare(
    expected: list[Entry],
    actual: list[Entry],
    folder_map: dict[str, str] | None = None,
    mailboxes: set[str] | None = None,
) -> Comparison:
    """Multiset comparison of ``expected`` (the manifest) with ``actual`` (a tree's entries).

    ``folder_map`` rewrites expected folders (restores into a dated folder: ``INBOX`` ->
    ``Restored-2026-11-29/INBOX``). ``mailboxes`` limits the check to some mailboxes.
    """
    mapping = folder_map or {}

    def keep(e: Entry) -> bool:
        return mailboxes is None or e.mailbox in mailboxes

    want = Counter(
        Entry(e.mailbox, mapping.get(e.folder, e.folder), e.sha256, e.size) for e in expected if keep(e)
    )
    have = Counter(e for e in actual if keep(e))
    missing = sorted((want - have).elements())
    extra = sorted((have - want).elements())
    return Comparison(missing=missing, extra=extra, checked=sum(want.values()))


def prefixed(prefix: str, folders: list[str]) -> dict[str, str]:
    """Folder map for a restore under ``prefix``: ``{"INBOX": "prefix/INBOX", "Sent": "prefix/Sent"}``."""
    return {f: f"{prefix}/{f}" for f in folders}


def _main(argv: list[str]) -> int:
    """``compute ROOT`` prints a manifest; ``compare MANIFEST ROOT`` prints a JSON verdict (rc 1 if bad)."""
    if len(argv) == 2 and argv[0] == "compute":
        sys.stdout.write(dumps(compute(Path(argv[1]))))
        return 0
    if len(argv) in (3, 4) and argv[0] == "compare":
        expected = loads(Path(argv[1]).read_text())
        result = compare(expected, compute(Path(argv[2])), folder_map=json.loads(argv[3]) if len(argv) == 4 else None)
        json.dump({"ok": result.ok, "checked": result.checked, "missing": len(result.missing),
                   "extra": len(result.extra)}, sys.stdout)
        sys.stdout.write("\n")
        return 0 if result.ok else 1
    sys.stderr.write("usage: manifest.py compute ROOT | compare MANIFEST ROOT [FOLDER_MAP_JSON]\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
