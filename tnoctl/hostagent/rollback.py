"""Roll an append-only borg repository back to an earlier transaction (runs on the backup host).

Why: with ``borg serve --append-only`` (borg 1.2/1.4), ``borg delete ARCHIVE`` and ``borg prune`` from
a mail host "succeed" but only *append* a transaction; no segment is removed or rewritten. The borg
documentation ("append-only mode") gives the recovery: remove the segments written after the last
good transaction (listed in the repository's ``transactions`` log, one line per commit; the id is the
segment number of the commit) and the index/hints/integrity files of later transactions; borg then
rebuilds its index from the remaining segments when the repository is next opened (``borg check``).

Here nothing is deleted: later segments and files are *moved* to a quarantine directory (evidence,
and a way back). The repository is held with borg's own exclusive lock directory while files move,
so a concurrent borg client waits (and times out) instead of writing into a half-rolled-back tree.

Standard library only; installed as ``/usr/local/lib/tno-backup/rollback.py`` and run as the
repository owner: ``rollback.py transactions REPO`` and ``rollback.py rollback REPO ID QUARANTINE``,
each printing one JSON line.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import sys
from pathlib import Path

_LINE = re.compile(r"^transaction (\d+), UTC time (\S+)")
_AUX = re.compile(r"^(index|hints|integrity)\.(\d+)$")
LOCK_NAME = "tno-rollback@tnoctl.{pid}-0"  # a foreign host id: borg never breaks it as stale


def parse_transactions(text: str) -> list[tuple[int, str]]:
    """(id, UTC time) of every line of a ``transactions`` log, in file order; other lines are skipped."""
    out = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            out.append((int(match.group(1)), match.group(2)))
    return out


def plan_rollback(repo: Path, keep: int) -> list[Path]:
    """Files to move out so that ``keep`` is the last transaction: later segments and aux files. Pure read."""
    later: list[Path] = []
    data = repo / "data"
    for directory in sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []:
        later += [f for f in directory.iterdir() if f.name.isdigit() and int(f.name) > keep]
    for item in repo.iterdir():
        match = _AUX.match(item.name)
        if match and int(match.group(2)) > keep:
            later.append(item)
    return sorted(later, key=lambda p: (p.parent != data, str(p)))


def repo_id(repo: Path) -> str:
    """The repository id (``[repository] id`` of its config): names the clients' cache/security dirs."""
    config = configparser.ConfigParser()
    config.read(repo / "config")
    return config.get("repository", "id")


class RepoLock:
    """borg's exclusive lock directory, taken the way borg takes it (``mkdir`` is atomic)."""

    def __init__(self, repo: Path) -> None:
        self.path = repo / "lock.exclusive"
        self.roster = repo / "lock.roster"
        self.mine = self.path / LOCK_NAME.format(pid=os.getpid())

    def __enter__(self) -> RepoLock:
        try:
            self.path.mkdir()
        except FileExistsError:
            raise RuntimeError("the repository is locked by a borg process; retry when it is done") from None
        self.mine.write_text("")
        try:
            roster = json.loads(self.roster.read_text()) if self.roster.exists() else {}
        except ValueError:
            roster = {}
        if any(roster.get(kind) for kind in ("shared", "exclusive")):
            self.__exit__()
            raise RuntimeError("the repository is in use (borg lock roster not empty); retry when it is done")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.mine.unlink(missing_ok=True)
        self.path.rmdir()


def rollback(repo: Path, keep: int, quarantine: Path) -> dict[str, object]:
    """Move everything written after transaction ``keep`` into ``quarantine``; rewrite the log."""
    log = repo / "transactions"
    known = parse_transactions(log.read_text()) if log.exists() else []
    if keep not in {tid for tid, _ in known}:
        raise ValueError(f"transaction {keep} is not in {log}")
    with RepoLock(repo):
        moved = plan_rollback(repo, keep)
        quarantine.mkdir(parents=True, mode=0o700)
        for item in moved:
            dest = quarantine / item.relative_to(repo)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(item, dest)
        shutil.copy2(log, quarantine / "transactions")
        kept = [ln for ln in log.read_text().splitlines(keepends=True)
                if not (_LINE.match(ln.strip()) and int(_LINE.match(ln.strip()).group(1)) > keep)]
        tmp = log.with_name(".transactions.tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, log)
    dropped = [tid for tid, _ in known if tid > keep]
    return {"repo_id": repo_id(repo), "kept": keep, "dropped_transactions": dropped,
            "moved": [str(p.relative_to(repo)) for p in moved], "quarantine": str(quarantine)}


def main(argv: list[str]) -> int:
    """``transactions REPO`` | ``rollback REPO ID QUARANTINE``; one JSON line on stdout."""
    try:
        if len(argv) == 2 and argv[0] == "transactions":
            repo = Path(argv[1])
            log = repo / "transactions"
            rows = parse_transactions(log.read_text()) if log.exists() else []
            doc: dict[str, object] = {"repo_id": repo_id(repo), "transactions": [list(r) for r in rows]}
        elif len(argv) == 4 and argv[0] == "rollback":
            doc = rollback(Path(argv[1]), int(argv[2]), Path(argv[3]))
        else:
            sys.stderr.write("usage: rollback.py transactions REPO | rollback REPO ID QUARANTINE\n")
            return 2
    except (OSError, RuntimeError, ValueError, configparser.Error) as exc:
        sys.stderr.write(f"rollback.py: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(doc) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
