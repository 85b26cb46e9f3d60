"""The archive ledger check of ``backup prune``: which archives vanished without tnoctl removing them. Pure.

Why: the mail and office hosts hold append-only keys. A compromised one can still run
``borg delete``/``borg prune``: the server only *appends* the transaction (the data stays in the
segments, ``backup recover-deleted`` can roll it back), until the next ``borg compact`` on the
backup host makes it permanent. So ``backup prune`` compares the repository's archive list with the
state store's ledger (:class:`tnoctl.state.store.ArchiveRecord`: archives tnoctl created or saw,
minus those it pruned, rolled back or was told to forget) and refuses to compact a repository where
an expected archive is missing. Its own prune is checked the same way: an archive that disappeared
during ``borg prune`` but that borg's ``--list`` output does not name as pruned was deleted by
someone else, and compact is skipped too.

The ledger alone misses an archive that a host's timer created and an intruder deleted before tnoctl
ever listed the repository. Until ``borg compact``, the older manifest versions are still in the
segments: ``vanished`` reads them (tnoctl/hostagent/history.py, on the backup host) and names every
archive that some version listed, that is gone now, and that tnoctl did not remove itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tnoctl.state.store import ARCHIVE_PRESENT, ArchiveRecord

# borg's own checkpoint archives of an interrupted or long ``create`` (removed by borg itself later)
_CHECKPOINT = re.compile(r"\.checkpoint(?:\.\d+)?$")
# borg 1.2 ``prune --list``: "Pruning archive (1/3): NAME   Tue, 2026-12-01 ... [id]" (1.1: no counter)
_PRUNED = re.compile(r"^Pruning archive(?: \(\d+/\d+\))?:\s+(\S+)")


def missing(ledger: Mapping[str, ArchiveRecord], current: Iterable[str]) -> list[str]:
    """Names tnoctl expects in the repository (created or seen) that are not in ``current``, sorted."""
    present = set(current)
    return sorted(name for name, rec in ledger.items() if rec.state in ARCHIVE_PRESENT and name not in present)


def unseen(ledger: Mapping[str, ArchiveRecord], current: Iterable[str]) -> list[str]:
    """Names in the repository the ledger does not yet expect (timer backups, first prune), sorted."""
    return sorted(n for n in set(current) if n not in ledger or ledger[n].state not in ARCHIVE_PRESENT)


def vanished(versions: Iterable[tuple[int, str, list[str]]], current: Iterable[str],
             ledger: Mapping[str, ArchiveRecord]) -> dict[str, int]:
    """Archives some manifest version listed that are gone now and that tnoctl did not remove.

    ``versions``: (transaction, timestamp, archive names) oldest first (history.py). Returns
    name -> the transaction of the first version without it (the delete). Left out: archives present
    now, borg's checkpoint archives, and those the ledger records as pruned, rolled back or accepted.
    """
    ordered = list(versions)
    last_index: dict[str, int] = {}
    for index, (_transaction, _timestamp, names) in enumerate(ordered):
        for name in names:
            last_index[name] = index
    present = set(current)
    out: dict[str, int] = {}
    for name, index in sorted(last_index.items()):
        record = ledger.get(name)
        if name in present or _CHECKPOINT.search(name) or (record is not None and record.state not in ARCHIVE_PRESENT):
            continue
        if index + 1 < len(ordered):  # the newest version lists it: not gone from the manifest (a race)
            out[name] = ordered[index + 1][0]
    return out


def pruned_by_borg(output: str) -> list[str]:
    """Archive names ``borg prune --list`` says it pruned (its log lines go to stderr)."""
    out = []
    for line in output.splitlines():
        match = _PRUNED.match(line.strip())
        if match:
            out.append(match.group(1))
    return out


def deleted_line(slug: str, archive: str) -> str:
    """The one line ``backup prune`` prints per archive a client deleted."""
    return (f"{slug}: archive {archive} was deleted from the repository by a client, not by tnoctl: "
            f"repository not compacted; recover with `tnoctl backup recover-deleted --tenant {slug}`")
