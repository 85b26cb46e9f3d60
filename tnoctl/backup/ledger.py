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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tnoctl.state.store import ARCHIVE_PRESENT, ArchiveRecord

# borg 1.2 ``prune --list``: "Pruning archive (1/3): NAME   Tue, 2026-12-01 ... [id]" (1.1: no counter)
_PRUNED = re.compile(r"^Pruning archive(?: \(\d+/\d+\))?:\s+(\S+)")


def missing(ledger: Mapping[str, ArchiveRecord], current: Iterable[str]) -> list[str]:
    """Names tnoctl expects in the repository (created or seen) that are not in ``current``, sorted."""
    present = set(current)
    return sorted(name for name, rec in ledger.items() if rec.state in ARCHIVE_PRESENT and name not in present)


def unseen(ledger: Mapping[str, ArchiveRecord], current: Iterable[str]) -> list[str]:
    """Names in the repository the ledger does not yet expect (timer backups, first prune), sorted."""
    return sorted(n for n in set(current) if n not in ledger or ledger[n].state not in ARCHIVE_PRESENT)


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
