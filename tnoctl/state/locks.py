"""Per-tenant locks ``<state_dir>/locks/<tenant>.lock``: one operation per commune at a time.

A lock is a small JSON file created atomically: written to a private temp file
(``O_CREAT|O_EXCL``, fsync) then hard-linked to its final name, which fails if the lock
exists, so a lock is never seen half-written. A conflict raises :class:`~tnoctl.errors.Locked`
(exit 3) naming the holder. A lock left by a dead process *on this host* is recovered with a
one-line warning; the pid's start time (``/proc/<pid>/stat`` field 22) is recorded so a
recycled pid does not keep a dead operation's lock alive. Locks taken on another host are never
auto-recovered. Recovery and release run under an ``flock`` guard and rename the lock to a unique
name before unlinking it, so two recoverers cannot both win. See docs/state.md.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tnoctl.errors import InvalidInput, Locked
from tnoctl.state import current_host, current_operator, durable, rfc3339, utc_now

log = logging.getLogger(__name__)
Warn = Callable[[str], None]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")
_ATTEMPTS = 5
_SAME_OPERATION_POLL = 0.5
"""Seconds between looks at a lock held by another thread of the same operation (see acquire)."""
_HELD_BY_THREAD: dict[tuple[str, str], int] = {}
"""(lock path, operation id) -> ident of the thread of this process holding it."""
_HELD_GUARD = threading.Lock()


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says: who holds the tenant, doing what, since when."""

    tenant: str
    owner: str
    pid: int
    host: str
    verb: str
    operation_id: str
    started: str
    pid_start_time: int | None = None

    @classmethod
    def from_json(cls, tenant: str, data: object) -> LockInfo:
        """Parse a lock file's JSON; ValueError when it is not a lock."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            start = data.get("pid_start_time")
            return cls(tenant, str(data["owner"]), int(data["pid"]), str(data["host"]), str(data["verb"]),
                       str(data["operation_id"]), str(data["started"]), None if start is None else int(start))
        except (KeyError, TypeError, OverflowError) as exc:
            raise ValueError(f"missing or bad field {exc}") from None


@dataclass(frozen=True)
class LockStatus:
    """A lock as :func:`list_locks` sees it: ``held``, ``stale`` (recoverable) or ``unreadable``."""

    tenant: str
    path: Path
    state: str
    info: LockInfo | None
    error: str | None = None


def lock_path(state_dir: Path, tenant: str) -> Path:
    """``<state_dir>/locks/<tenant>.lock``; rejects anything that is not a tenant slug."""
    if not _SLUG.fullmatch(tenant):
        raise InvalidInput(f"'{tenant}' is not a tenant slug ([a-z0-9-], at most 40 characters)")
    return Path(state_dir) / "locks" / f"{tenant}.lock"


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # field 3 (state) onwards; comm may hold spaces
    return int(fields[19]) if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust kill()


def is_stale(info: LockInfo) -> bool:
    """True when the holder certainly no longer runs: same host, and pid dead or recycled."""
    if info.host != current_host() or info.pid <= 0:
        return False
    if not _pid_alive(info.pid):
        return True
    return info.pid_start_time is not None and process_start_time(info.pid) != info.pid_start_time


LOCK_MAX_BYTES = 64 * 1024
"""A lock file is ~300 bytes of JSON."""


def _read(path: Path, tenant: str) -> LockInfo:
    """The lock at ``path``; FileNotFoundError if absent, ValueError if unreadable."""
    try:
        raw = durable.read_regular(path, LOCK_MAX_BYTES)  # a FIFO or link planted in locks/ cannot hang us
        return LockInfo.from_json(tenant, json.loads(raw))
    except RecursionError:
        raise ValueError(f"unreadable lock file {path}: JSON nesting too deep") from None
    except ValueError as exc:
        raise ValueError(f"unreadable lock file {path}: {exc}") from None


def _create(path: Path, info: LockInfo) -> bool:
    """Atomically create the lock with its full content; False if it already exists."""
    data = json.dumps({k: v for k, v in asdict(info).items() if k != "tenant"}).encode() + b"\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".{info.tenant}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, fails if the lock exists
    except FileExistsError:
        return False
    except OSError as exc:  # filesystems without hard links: plain O_EXCL create
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        return _create_direct(path, data)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _create_direct(path: Path, data: bytes) -> bool:
    """Fallback create with ``O_CREAT|O_EXCL`` on the final name (content written right after)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


@contextmanager
def _guard(state_dir: Path) -> Iterator[None]:
    """Serialize lock removals (stale recovery, release) across processes with ``flock``."""
    locks_dir = Path(state_dir) / "locks"
    locks_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(locks_dir / ".guard", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _remove_if(path: Path, tenant: str, expected: Callable[[LockInfo], bool]) -> LockInfo | None:
    """Under the guard: rename the lock away and unlink it if ``expected(lock)``; return it."""
    try:
        info = _read(path, tenant)
    except (FileNotFoundError, ValueError):
        return None
    return info if expected(info) and _discard(path) else None


def _discard(path: Path) -> bool:
    """Rename the lock to a unique name, then unlink it: only one remover can win the rename."""
    doomed = path.with_name(f"{path.name}.stale-{secrets.token_hex(6)}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return False
    doomed.unlink(missing_ok=True)
    return True


def _holder_message(tenant: str, info: LockInfo) -> str:
    return (
        f"tenant {tenant} is locked by {info.verb} (pid {info.pid} on {info.host}, operator {info.owner}, "
        f"since {info.started}); wait, or 'tnoctl lock release {tenant} --yes' if that operation is dead"
    )


def acquire(state_dir: Path, tenant: str, verb: str, operation_id: str, warn: Warn | None = None) -> LockInfo:
    """Take ``tenant``'s lock or raise Locked naming the holder; recover a stale lock first.

    A lock held by another thread of the same operation (an OS upgrade's batch runs a commune's mail
    host and office host at once) is waited for, not refused: the commune's hosts then take their turn.
    `hold` takes locks in sorted order, so two such threads cannot wait for each other. The same
    thread asking again is refused as before (waiting would never end).
    """
    path = lock_path(state_dir, tenant)
    pid = os.getpid()
    mine = LockInfo(tenant, current_operator(), pid, current_host(), verb, operation_id,
                    rfc3339(utc_now()), process_start_time(pid))
    attempts = 0
    while attempts < _ATTEMPTS:
        attempts += 1
        if _create(path, mine):
            with _HELD_GUARD:
                _HELD_BY_THREAD[(str(path), operation_id)] = threading.get_ident()
            return mine
        try:
            info = _read(path, tenant)
        except FileNotFoundError:
            continue  # released meanwhile: try again
        except ValueError as exc:
            raise Locked(
                f"tenant {tenant} is locked ({exc}); check no operation runs on it, "
                f"then 'tnoctl lock release {tenant} --yes'"
            ) from None
        if not is_stale(info):
            if _held_by_a_sibling_thread(path, info, operation_id):
                time.sleep(_SAME_OPERATION_POLL)
                attempts = 0
                continue
            details = [f"operation {info.operation_id}", f"lock {path}"]
            raise Locked(_holder_message(tenant, info), details=details)
        with _guard(state_dir):
            gone = _remove_if(path, tenant, lambda cur, old=info: cur == old and is_stale(cur))
        if gone is not None:
            (warn or log.warning)(
                f"recovered stale lock of tenant {tenant}: {gone.verb} (pid {gone.pid} on {gone.host}, "
                f"operator {gone.owner}, since {gone.started}) is no longer running"
            )
    raise Locked(f"tenant {tenant}: could not take its lock, other operations keep taking it; retry")


def _held_by_a_sibling_thread(path: Path, info: LockInfo, operation_id: str) -> bool:
    """True when ``info`` is this operation's lock, taken by another thread of this very process."""
    if info.operation_id != operation_id or info.pid != os.getpid() or info.host != current_host():
        return False
    with _HELD_GUARD:
        holder = _HELD_BY_THREAD.get((str(path), operation_id))
    return holder is not None and holder != threading.get_ident()


def release_own(state_dir: Path, tenant: str, operation_id: str) -> bool:
    """Remove ``tenant``'s lock only if it still belongs to ``operation_id``."""
    path = lock_path(state_dir, tenant)
    with _guard(state_dir):
        removed = _remove_if(path, tenant, lambda cur: cur.operation_id == operation_id) is not None
    with _HELD_GUARD:
        _HELD_BY_THREAD.pop((str(path), operation_id), None)
    return removed


@contextmanager
def hold(
    state_dir: Path, tenants: Iterable[str], verb: str, operation_id: str, warn: Warn | None = None
) -> Iterator[list[LockInfo]]:
    """Hold the locks of all ``tenants`` (taken in sorted order, all or none) for the block."""
    taken: list[LockInfo] = []
    try:
        for tenant in sorted(set(tenants)):
            taken.append(acquire(state_dir, tenant, verb, operation_id, warn))
        yield taken
    finally:
        for info in reversed(taken):
            release_own(state_dir, info.tenant, operation_id)


def _status(path: Path, tenant: str) -> LockStatus | None:
    """The state of one lock file, None when it does not exist."""
    try:
        info = _read(path, tenant)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        return LockStatus(tenant, path, "unreadable", None, str(exc))
    return LockStatus(tenant, path, "stale" if is_stale(info) else "held", info)


def list_locks(state_dir: Path) -> list[LockStatus]:
    """Every lock in the state dir, sorted by tenant, with its state (held, stale, unreadable)."""
    found = (_status(p, p.name[: -len(".lock")]) for p in sorted((Path(state_dir) / "locks").glob("*.lock")))
    return [status for status in found if status is not None]


def release(state_dir: Path, tenant: str) -> LockStatus | None:
    """Operator override: remove ``tenant``'s lock whoever holds it; None when it was not locked."""
    path = lock_path(state_dir, tenant)
    with _guard(state_dir):
        status = _status(path, tenant)
        return status if status is not None and _discard(path) else None
