"""borg on the backup host: the command line to run it, and parsers of its JSON output. Pure functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from tnoctl.backup.naming import BACKUP_USER, parse_archive
from tnoctl.errors import OperationFailed


def owner_command(*argv: str) -> list[str]:
    """``argv`` run as the repository owner on the backup host (local repository access)."""
    return ["runuser", "-u", BACKUP_USER, "--", *argv]


def borg_command(passphrase: str | None, borg_args: list[str], cwd: str | None = None,
                 program: tuple[str, ...] = ("borg",)) -> tuple[list[str], bytes]:
    """``(argv, stdin)`` running ``borg ARGS`` as the repository owner in ``cwd``.

    The passphrase never goes on the command line (visible in ``ps`` and in audit records): borg
    reads it from stdin (``BORG_PASSPHRASE_FD=0``). ``program``: what runs instead of the borg CLI
    with the same environment (a host script using borg as a library, e.g. history.py).
    """
    env = ["env", *(["-C", cwd] if cwd else []), "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
           "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no"]
    if passphrase is not None:
        env.append("BORG_PASSPHRASE_FD=0")
    data = (passphrase + "\n").encode() if passphrase is not None else b""
    return owner_command(*env, *program, *borg_args), data


@dataclass(frozen=True)
class Archive:
    """One archive as ``backup list`` shows it. Sizes in bytes (None when borg did not report them)."""

    name: str
    time: str
    original_bytes: int | None = None
    compressed_bytes: int | None = None
    deduplicated_bytes: int | None = None
    files: int | None = None
    duration_seconds: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON form (``--json``)."""
        return dict(self.__dict__)


def _doc(text: str) -> dict:
    """The JSON document borg (or borgmatic) printed; OperationFailed when it printed anything else.

    The backup host is a network peer: empty or malformed output is a failed command, never a
    traceback.
    """
    try:
        data = json.loads(text)
    except ValueError:
        raise OperationFailed(f"borg printed no JSON document ({len(text)} bytes of output)") from None
    if isinstance(data, list):  # borgmatic wraps one document per repository in a list
        data = data[0] if data else {}
    if not isinstance(data, dict) or not isinstance(data.get("archives", []), list):
        raise OperationFailed("unexpected borg JSON output (no archives list)")
    if not all(isinstance(a, dict) and "name" in a for a in data.get("archives", [])):
        raise OperationFailed("unexpected borg JSON output (an archive without a name)")
    return data


def _count(value: object) -> int | None:
    """A non-negative integer from borg's JSON, else None (a hostile peer may send anything)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: object) -> float | None:
    """A non-negative duration from borg's JSON, else None."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None


def parse_list(text: str) -> list[Archive]:
    """Archives from ``borg list --json`` (oldest first)."""
    doc = _doc(text)
    out = [Archive(str(a["name"]), str(a.get("start") or a.get("time"))) for a in doc.get("archives", [])]
    return sorted(out, key=lambda a: a.time)


def parse_info(text: str) -> list[Archive]:
    """Archives with sizes from ``borg info --json REPO --glob-archives ...`` (oldest first)."""
    doc = _doc(text)
    out = []
    for a in doc.get("archives", []):
        stats = a.get("stats") if isinstance(a.get("stats"), dict) else {}
        out.append(
            Archive(
                name=str(a["name"]),
                time=str(a.get("start")),
                original_bytes=_count(stats.get("original_size")),
                compressed_bytes=_count(stats.get("compressed_size")),
                deduplicated_bytes=_count(stats.get("deduplicated_size")),
                files=_count(stats.get("nfiles")),
                duration_seconds=_seconds(a.get("duration")),
            )
        )
    return sorted(out, key=lambda a: a.time)


def latest(archives: list[Archive]) -> Archive | None:
    """The newest archive, or None."""
    return max(archives, key=lambda a: a.time) if archives else None


def archive_epoch(archive: Archive) -> float:
    """Archive start as epoch seconds (borg prints naive local ISO times; hosts run in UTC in the lab)."""
    return datetime.fromisoformat(archive.time).timestamp()


def of_component(archives: list[Archive], slug: str, component: str) -> list[Archive]:
    """The tenant's archives of one component (scheduled and tagged; see naming.parse_archive)."""
    return [a for a in archives if (parse_archive(slug, a.name) or ("", None))[0] == component]


def parse_paths(text: str) -> list[str]:
    """Paths of the regular files of ``borg list --json-lines ARCHIVE`` output."""
    out = []
    for line in text.splitlines():
        if line.strip():
            item = json.loads(line)
            if item.get("type") == "-":
                out.append(str(item["path"]))
    return out
