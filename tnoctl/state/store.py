"""The state store: what batch verbs record and the exporter reads at scrape time.

Why this shape: batch runs (backups, upgrades, drift checks) run concurrently and must
record cheaply, and the exporter must answer a scrape of 10,000 tenants in well under a
second. So each kind of record is one JSON-lines file under ``<state_dir>/store/`` that
writers only *append* to (one ``write()`` of one line, under a shared ``flock``), and the
latest record per key wins. Readers keep an incremental index per file: a scrape only
parses the bytes appended since the previous one. :meth:`Store.compact` rewrites a file to
its latest records (under the exclusive lock) and renames it into place.

Reading is tolerant: a truncated or garbage line is skipped and counted
(:class:`ReadStats`), so one bad writer never takes the exporter down; the counts become
self-metrics. Unknown tenants are filtered by the caller (it knows the inventory).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from tnoctl.state import durable

UpgradeState = Literal["idle", "running", "succeeded", "failed", "rolled_back"]
UPGRADE_STATES: tuple[str, ...] = ("idle", "running", "succeeded", "failed", "rolled_back")


class _OnePerComponent:
    """Records kept once per (tenant, component): the latest one wins."""

    tenant: str
    component: str

    def key(self) -> tuple[str, ...]:
        """One record per tenant and component."""
        return (self.tenant, self.component)


@dataclass(frozen=True)
class BackupResult:
    """One backup run of one tenant's component (``mail`` or ``office``). Sizes in bytes."""

    KIND: ClassVar[str] = "backups"
    tenant: str
    component: str
    ok: bool
    finished_at: float
    duration_seconds: float = 0.0
    original_bytes: int | None = None
    compressed_bytes: int | None = None
    deduplicated_bytes: int | None = None
    detail: str = ""

    def key(self) -> tuple[str, ...]:
        """Latest success and latest failure are both kept (a failure must not hide the last success)."""
        return (self.tenant, self.component, "ok" if self.ok else "failed")


@dataclass(frozen=True)
class BackupVerification:
    """One verification (restore test / ``borg check``) of a tenant's backup archive."""

    KIND: ClassVar[str] = "verifications"
    tenant: str
    component: str
    ok: bool
    verified_at: float
    detail: str = ""

    def key(self) -> tuple[str, ...]:
        """Latest good and latest failed verification are both kept."""
        return (self.tenant, self.component, "ok" if self.ok else "failed")


@dataclass(frozen=True)
class VersionRecord(_OnePerComponent):
    """Version deployed on a tenant's component versus the version the platform pins."""

    KIND: ClassVar[str] = "versions"
    tenant: str
    component: str
    deployed: str
    pinned: str
    checked_at: float


@dataclass(frozen=True)
class UpgradeRecord(_OnePerComponent):
    """State of the latest upgrade of a tenant's component; ``last_success_at`` survives later runs."""

    KIND: ClassVar[str] = "upgrades"
    tenant: str
    component: str
    state: str
    started_at: float
    finished_at: float | None = None
    last_success_at: float | None = None
    from_version: str = ""
    to_version: str = ""


@dataclass(frozen=True)
class DriftRecord(_OnePerComponent):
    """Result of a check-mode run (``tnoctl drift``): did the tenant's configuration drift?"""

    KIND: ClassVar[str] = "drift"
    tenant: str
    component: str
    drift: bool
    changed_tasks: int
    checked_at: float


@dataclass(frozen=True)
class OperationRecord:
    """Outcome of the latest run of a verb on a tenant (deploy, upgrade, backup, restore...)."""

    KIND: ClassVar[str] = "operations"
    tenant: str
    verb: str
    ok: bool
    finished_at: float
    duration_seconds: float = 0.0

    def key(self) -> tuple[str, ...]:
        """One record per tenant and verb."""
        return (self.tenant, self.verb)


ARCHIVE_STATES: tuple[str, ...] = ("created", "seen", "pruned", "rolled_back", "accepted")
ARCHIVE_PRESENT: tuple[str, ...] = ("created", "seen")  # tnoctl expects these in the repository


@dataclass(frozen=True)
class ArchiveRecord:
    """What tnoctl knows of one archive of a tenant's repository (the ledger ``backup prune`` checks).

    ``created`` (by ``tnoctl backup run``) and ``seen`` (listed in the repository by ``backup prune``)
    mean the archive must still be there; ``pruned`` (by tnoctl's own retention), ``rolled_back`` (by
    ``backup recover-deleted``) and ``accepted`` (``backup prune --accept-deleted``) mean tnoctl
    knows why it is gone. Anything else that disappeared was deleted by a client (docs/backups.md).
    """

    KIND: ClassVar[str] = "archives"
    tenant: str
    archive: str
    state: str
    at: float

    def key(self) -> tuple[str, ...]:
        """One record per archive of a tenant: its latest state."""
        return (self.tenant, self.archive)


DNS_STATES: tuple[str, ...] = ("published", "missing", "different")


@dataclass(frozen=True)
class DnsRecordCheck:
    """One record of one `dns check` of a tenant (``record``: ``kind name type``, e.g. ``mx givors.test. MX``).

    Every record of one check carries the same ``checked_at``; the exporter shows only the records of
    a tenant's latest check, so a record the tenant no longer needs (a retired DKIM selector, a removed
    domain) stops being exported at the next check instead of alerting forever.
    """

    KIND: ClassVar[str] = "dns"
    tenant: str
    record: str
    ok: bool
    state: str
    checked_at: float

    def key(self) -> tuple[str, ...]:
        """One record per tenant and DNS record: its latest check."""
        return (self.tenant, self.record)


Record = (BackupResult | BackupVerification | VersionRecord | UpgradeRecord | DriftRecord | OperationRecord
          | ArchiveRecord | DnsRecordCheck)
RECORD_TYPES: dict[str, type] = {
    t.KIND: t
    for t in (BackupResult, BackupVerification, VersionRecord, UpgradeRecord, DriftRecord, OperationRecord,
              ArchiveRecord, DnsRecordCheck)
}


@dataclass
class BackupStatus:
    """What the exporter needs about one tenant's component backups, folded from the records."""

    tenant: str
    component: str
    last_success: BackupResult | None = None
    last_failure: BackupResult | None = None
    last_verified_at: float | None = None
    last_verification_failed_at: float | None = None

    @property
    def last_failed(self) -> bool:
        """True when the most recent attempt failed."""
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure.finished_at > self.last_success.finished_at

    @property
    def last_verification_failed(self) -> bool:
        """True when the most recent verification (drill, verify) failed."""
        if self.last_verification_failed_at is None:
            return False
        return self.last_verified_at is None or self.last_verification_failed_at > self.last_verified_at


@dataclass
class ReadStats:
    """Per-kind health of the store files, exported as self-metrics."""

    records: int = 0
    invalid_lines: int = 0
    last_error: str = ""


def _merge_upgrade(prev: UpgradeRecord | None, new: UpgradeRecord) -> UpgradeRecord:
    """Carry ``last_success_at`` forward so that the latest record alone answers the alert."""
    last = new.last_success_at
    if last is None and new.state == "succeeded":
        last = new.finished_at or new.started_at
    if last is None and prev is not None:
        last = prev.last_success_at
    if last == new.last_success_at:
        return new
    return UpgradeRecord(**{**asdict(new), "last_success_at": last})


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "bool": (bool,), "float": (int, float), "int": (int,)}


def _check_field(name: str, annotation: str, value: Any) -> None:
    """Raise TypeError unless ``value`` fits ``annotation`` ('str', 'float | None', ...) exactly."""
    allowed: tuple[type, ...] = ()
    optional = False
    for part in str(annotation).split("|"):
        part = part.strip()
        if part == "None":
            optional = True
        else:
            allowed += _TYPES[part]
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in allowed:
        raise TypeError(f"{name}: a boolean where {annotation} is expected")
    if not isinstance(value, allowed):
        raise TypeError(f"{name}: {type(value).__name__} where {annotation} is expected")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}: not a finite number")


def _decode(kind: str, line: bytes) -> Record:
    """Parse one line into its record type; raise ValueError/TypeError/KeyError on anything odd.

    Every field is type-checked: a dict where a string belongs would make the record unhashable
    (key) and a string time would break every comparison of the exporter later, far from the line.
    """
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    cls = RECORD_TYPES[kind]
    kept = {}
    for f in fields(cls):
        if f.name in data:  # newer writers may add fields; missing ones get defaults or TypeError
            _check_field(f.name, str(f.type), data[f.name])
            kept[f.name] = data[f.name]
    record = cls(**kept)
    if not record.tenant:
        raise ValueError("tenant missing")
    if isinstance(record, UpgradeRecord) and record.state not in UPGRADE_STATES:
        raise ValueError(f"state: not one of {', '.join(UPGRADE_STATES)}")
    if isinstance(record, ArchiveRecord) and record.state not in ARCHIVE_STATES:
        raise ValueError(f"state: not one of {', '.join(ARCHIVE_STATES)}")
    if isinstance(record, DnsRecordCheck) and (record.state not in DNS_STATES or not record.record):
        raise ValueError(f"state: not one of {', '.join(DNS_STATES)}, or no record")
    return record


@dataclass
class _KindIndex:
    """Incremental reader of one kind's file: remembers the inode and the offset already parsed."""

    path: Path
    kind: str
    inode: int | None = None
    offset: int = 0
    pending: bytes = b""
    latest: dict[tuple[str, ...], Any] = field(default_factory=dict)
    stats: ReadStats = field(default_factory=ReadStats)

    def reset(self) -> None:
        """Forget everything (the file was compacted, replaced or truncated)."""
        self.inode, self.offset, self.pending = None, 0, b""
        self.latest = {}
        self.stats = ReadStats()

    def refresh(self) -> None:
        """Parse what was appended since the last call; re-read from scratch after a compaction."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            self.reset()
            return
        except OSError as exc:  # a symlink planted in store/ (ELOOP)
            self.reset()
            self.stats.last_error = f"cannot open: {exc.strerror}"
            return
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):  # a FIFO must never hang a scrape
                self.reset()
                self.stats.last_error = "not a regular file"
                return
            if st.st_ino != self.inode or st.st_size < self.offset:
                self.reset()
                self.inode = st.st_ino
            if st.st_size == self.offset:
                return
            fh.seek(self.offset)
            chunk = fh.read(st.st_size - self.offset)
        self.offset += len(chunk)
        data = self.pending + chunk
        lines = data.split(b"\n")
        self.pending = lines.pop()  # b"" when the chunk ends with a newline; else a line being written
        for line in lines:
            self._apply(line)

    def _apply(self, line: bytes) -> None:
        """Fold one line in; a bad line is counted and skipped, never fatal for the lines after it."""
        if not line.strip():
            return
        try:
            record = _decode(self.kind, line)
            key = record.key()
            if isinstance(record, UpgradeRecord):
                record = _merge_upgrade(self.latest.get(key), record)
            self.latest[key] = record
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            self.stats.invalid_lines += 1
            self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
            return
        self.stats.records = len(self.latest)


class Store:
    """Typed access to ``<state_dir>/store/*.jsonl``: append records, read the latest per key."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "store"
        self._lock = threading.Lock()
        self._index = {kind: _KindIndex(self.dir / f"{kind}.jsonl", kind) for kind in RECORD_TYPES}

    # ------------------------------------------------------------------ writing
    def path(self, kind: str) -> Path:
        """The JSON-lines file of one kind."""
        return self._index[kind].path

    @contextlib.contextmanager
    def _file_lock(self, kind: str, exclusive: bool) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / f"{kind}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def append(self, record: Record) -> None:
        """Append one record as one line with one ``write()`` (atomic for concurrent appenders)."""
        self.append_many([record])

    def append_many(self, records: Sequence[Record]) -> None:
        """Append records of one kind, one line each, with one ``write()`` and one ``fsync``.

        Why: a DNS check writes a record per DNS record of a tenant (about twenty); one sync per check, not
        per line. Readers never see a torn batch: a line without its newline waits for the next read.
        """
        if not records:
            return
        kind = records[0].KIND
        if {r.KIND for r in records} != {kind}:
            raise ValueError("append_many: records of one kind only")
        data = b"".join(json.dumps(asdict(r), separators=(",", ":"), sort_keys=True).encode() + b"\n"
                        for r in records)
        with self._file_lock(kind, exclusive=False):
            fd = os.open(self.path(kind), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a crashed writer left half a line: do not glue ours to it
                os.write(fd, data)
                os.fsync(fd)  # a recorded backup or upgrade must survive a crash
            finally:
                os.close(fd)
            if size == 0:
                durable.fsync_dir(self.dir)  # the file is new: make its directory entry durable

    def record_backup(self, result: BackupResult) -> None:
        """Record one backup run."""
        self.append(result)

    def record_verification(self, result: BackupVerification) -> None:
        """Record one backup verification."""
        self.append(result)

    def record_version(self, record: VersionRecord) -> None:
        """Record the deployed and pinned versions of a tenant's component."""
        self.append(record)

    def record_upgrade(self, record: UpgradeRecord) -> None:
        """Record an upgrade state change (running, succeeded, failed...)."""
        self.append(record)

    def record_drift(self, record: DriftRecord) -> None:
        """Record the outcome of a drift check."""
        self.append(record)

    def record_operation(self, record: OperationRecord) -> None:
        """Record the outcome of a verb on a tenant."""
        self.append(record)

    def record_dns(self, checks: Sequence[DnsRecordCheck]) -> None:
        """Record one DNS check of a tenant: every record's result (same ``checked_at``), in one write."""
        self.append_many(checks)

    def compact(self, kind: str | None = None) -> dict[str, int]:
        """Rewrite each file to its latest records; return lines kept per kind. Safe against appenders."""
        kept: dict[str, int] = {}
        for k in [kind] if kind else list(RECORD_TYPES):
            with self._file_lock(k, exclusive=True):
                index = _KindIndex(self.path(k), k)
                index.refresh()
                if index.inode is None:
                    continue
                tmp = self.path(k).with_suffix(f".jsonl.tmp{os.getpid()}")
                with open(tmp, "wb") as fh:
                    for record in index.latest.values():
                        fh.write(json.dumps(asdict(record), separators=(",", ":"), sort_keys=True).encode())
                        fh.write(b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                durable.replace(tmp, self.path(k))
                kept[k] = len(index.latest)
        return kept

    # ------------------------------------------------------------------ reading
    def _latest(self, kind: str) -> dict[tuple[str, ...], Any]:
        with self._lock:
            index = self._index[kind]
            index.refresh()
            return dict(index.latest)

    def generation(self, *kinds: str) -> tuple:
        """Cheap change token for ``kinds``: (inode, bytes parsed) per file after a refresh.

        The exporter re-renders a kind's metrics only when its token changed.
        """
        with self._lock:
            out = []
            for kind in kinds:
                index = self._index[kind]
                index.refresh()
                out.append((index.inode, index.offset))
            return tuple(out)

    def read_stats(self) -> dict[str, ReadStats]:
        """Per-kind record counts and invalid lines, as of the last read."""
        with self._lock:
            return {k: ReadStats(i.stats.records, i.stats.invalid_lines, i.stats.last_error)
                    for k, i in self._index.items()}

    def latest_records(self, kind: str) -> dict[tuple[str, ...], Any]:
        """A copy of the latest record per key of one kind (unchanged records keep their identity).

        The exporter compares two copies by identity to find the tenants whose records changed.
        """
        return self._latest(kind)

    def latest_backups(self) -> dict[tuple[str, str], BackupStatus]:
        """Backup status per (tenant, component): last success, last failure, last verification."""
        return backup_statuses(self._latest(BackupResult.KIND).values(),
                               self._latest(BackupVerification.KIND).values())

    def latest_versions(self) -> dict[tuple[str, str], VersionRecord]:
        """Deployed vs pinned version per (tenant, component)."""
        return {(r.tenant, r.component): r for r in self._latest(VersionRecord.KIND).values()}

    def latest_upgrades(self) -> dict[tuple[str, str], UpgradeRecord]:
        """Latest upgrade state per (tenant, component)."""
        return {(r.tenant, r.component): r for r in self._latest(UpgradeRecord.KIND).values()}

    def latest_drift(self) -> dict[tuple[str, str], DriftRecord]:
        """Latest drift check per (tenant, component)."""
        return {(r.tenant, r.component): r for r in self._latest(DriftRecord.KIND).values()}

    def record_archive(self, record: ArchiveRecord) -> None:
        """Record what happened to one archive (created, seen, pruned, rolled back, accepted lost)."""
        self.append(record)

    def archive_ledger(self, tenant: str) -> dict[str, ArchiveRecord]:
        """The latest record of every archive tnoctl knows of in ``tenant``'s repository, by name."""
        return {r.archive: r for (t, _), r in self._latest(ArchiveRecord.KIND).items() if t == tenant}

    def latest_dns(self) -> dict[tuple[str, str], DnsRecordCheck]:
        """Latest check per (tenant, record) (records of older checks included: see :class:`DnsRecordCheck`)."""
        return {(r.tenant, r.record): r for r in self._latest(DnsRecordCheck.KIND).values()}

    def latest_operations(self) -> dict[tuple[str, str], OperationRecord]:
        """Latest outcome per (tenant, verb)."""
        return {(r.tenant, r.verb): r for r in self._latest(OperationRecord.KIND).values()}


def backup_statuses(results: Iterable[BackupResult],
                    verifications: Iterable[BackupVerification]) -> dict[tuple[str, str], BackupStatus]:
    """Fold latest backup results and verifications into one status per (tenant, component)."""
    out: dict[tuple[str, str], BackupStatus] = {}
    for rec in results:
        status = out.setdefault((rec.tenant, rec.component), BackupStatus(rec.tenant, rec.component))
        if rec.ok:
            status.last_success = rec
        else:
            status.last_failure = rec
    for ver in verifications:
        status = out.setdefault((ver.tenant, ver.component), BackupStatus(ver.tenant, ver.component))
        if ver.ok:
            status.last_verified_at = ver.verified_at
        else:
            status.last_verification_failed_at = ver.verified_at
    return out


def now() -> float:
    """Current time as epoch seconds (one place, so callers and tests agree on the unit)."""
    return time.time()
