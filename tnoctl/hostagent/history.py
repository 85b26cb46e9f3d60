"""The archive names of every manifest version still in a borg repository (runs on the backup host).

Why: an append-only repository keeps every transaction until ``borg compact``. A client that runs
``borg delete``/``borg prune`` with its own (append-only) key only appends a new manifest: the older
manifest versions, which still list the deleted archives, stay in the segments. ``backup prune``
compares these versions with the archives present now, so an archive that a host's timer created and
an intruder deleted before tnoctl ever listed the repository is still caught and named before
compact would make the delete permanent (tnoctl/backup/ledger.py ``vanished``).

How: the repository is opened read-only with borg's shared lock (a running backup is not disturbed);
its segments are scanned object header by object header (no chunk data is read) for PUTs of the
manifest id; each manifest version is read, decrypted and authenticated (TAM) with the repository key
and the passphrase; a version counts once a COMMIT follows it (an in-progress transaction is left out).
After ``borg compact`` only the versions in segments compact kept are left, which is what prune needs:
what happened since the last prune.

Needs borg as a library (Debian's ``borgbackup`` package, ``/usr/bin/python3``); installed as
``/usr/local/lib/tno-backup/history.py`` and run as the repository owner:
``BORG_PASSPHRASE_FD=0 history.py REPO`` (passphrase on stdin), one JSON line on stdout:
``{"repo_id": ..., "versions": [[transaction, manifest timestamp, [archive names]], ...]}``.
"""

from __future__ import annotations

import json
import sys


def manifest_versions(repo_path: str) -> tuple[str, list[tuple[int, str, list[str]]]]:
    """(repository id, [(transaction, timestamp, sorted archive names)] oldest first) of ``repo_path``."""
    from borg.logger import setup_logging

    setup_logging(level="warning", stream=sys.stderr)
    from borg.crypto.key import key_factory
    from borg.helpers import Manifest
    from borg.item import ManifestItem
    from borg.repository import TAG_COMMIT, TAG_PUT, Repository

    with Repository(repo_path, create=False, exclusive=False) as repo:
        pending: list[tuple[int, int]] = []  # manifest PUTs not yet followed by a COMMIT: (segment, offset)
        committed: list[tuple[int, int, int]] = []  # (transaction, segment, offset)
        for segment, _filename in repo.io.segment_iterator():
            for tag, key, offset, _size in repo.io.iter_objects(segment, include_data=False):
                if tag == TAG_PUT and key == Manifest.MANIFEST_ID:
                    pending.append((segment, offset))
                elif tag == TAG_COMMIT:
                    committed += [(segment, seg, off) for seg, off in pending]
                    pending = []
        if not committed:
            return repo.id_str, []
        raw = [repo.io.read(seg, off, Manifest.MANIFEST_ID) for _tx, seg, off in committed]
        key = key_factory(repo, raw[-1])
        versions = []
        for (transaction, _seg, _off), cdata in zip(committed, raw, strict=True):
            plain = key.decrypt(None, cdata)
            item = ManifestItem(internal_dict=key.unpack_and_verify_manifest(plain)[0])
            names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in item.archives)
            versions.append((transaction, str(item.get("timestamp", "")), names))
        return repo.id_str, versions


def main(argv: list[str]) -> int:
    """``history.py REPO``: one JSON line (see the module docstring); exit 2 with one line on error."""
    if len(argv) != 1:
        sys.stderr.write("usage: history.py REPO (passphrase: BORG_PASSPHRASE_FD=0, on stdin)\n")
        return 2
    try:
        repo_id, versions = manifest_versions(argv[0])
    except Exception as exc:  # one line for the controller: never a traceback naming key files
        sys.stderr.write(f"history.py: {type(exc).__name__}: {exc}\n")
        return 2
    print(json.dumps({"repo_id": repo_id, "versions": [list(v) for v in versions]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
