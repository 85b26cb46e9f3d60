"""The append-only audit log ``<state_dir>/audit.jsonl``: one JSON line per operation.

Why these mechanics: every record is serialized first, then appended with ``O_APPEND`` in a
single ``write()`` and ``fsync``-ed, so concurrent tnoctl processes never interleave lines and
a crash loses at most the record being written. Readers skip a truncated last line instead of
failing. Secrets are scrubbed from every string (by name and by value, see ``redact``) before
anything is serialized.

Usage from an action::

    with audit.operation(state_dir, "deploy", argv, tenants=slugs) as op:
        with locks.hold(state_dir, slugs, "deploy", op.id):
            ...
            op.artifacts = str(run_dir)
            if failed_tenants:
                op.details["failed_tenants"] = failed_tenants
                op.fail(1, "2 tenants failed")
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tnoctl.errors import ExitCode, InvalidInput, Locked, OperationFailed, Refused, TnoError
from tnoctl.state import current_host, current_operator, rfc3339, utc_now
from tnoctl.state.redact import SECRETS, SecretRegistry, redact_args

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
RESULTS = ("ok", "failed", "refused", "locked", "interrupted", "invalid")
_RESULT_OF_CODE = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "failed",
    ExitCode.INVALID: "invalid",
    ExitCode.LOCKED: "locked",
    ExitCode.REFUSED: "refused",
    ExitCode.INTERRUPTED: "interrupted",
}
_CODE_OF_RESULT = {result: int(code) for code, result in _RESULT_OF_CODE.items()}


def audit_path(state_dir: Path) -> Path:
    """Where the audit log of this state dir lives."""
    return Path(state_dir) / AUDIT_FILE


def new_operation_id(moment: datetime | None = None) -> str:
    """A unique, sortable operation id such as ``20261129T153000Z-3fa9c1``."""
    stamp = (moment or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass
class Operation:
    """One audited operation in progress; the action may fill artifacts, details and result."""

    id: str
    verb: str
    args: list[str]
    tenants: list[str]
    hosts: list[str]
    started: datetime
    artifacts: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    exit_code: int | None = None

    def fail(self, exit_code: int = int(ExitCode.FAILED), reason: str | None = None) -> None:
        """Mark a partial failure reported by exit code rather than by exception."""
        self.exit_code = int(exit_code)
        self.result = _result_of_code(self.exit_code)
        if reason:
            self.details["error"] = reason


def _result_of_code(code: int) -> str:
    """The audit result word for an exit code (unknown non-zero codes are ``failed``)."""
    try:
        return _RESULT_OF_CODE[ExitCode(code)]
    except ValueError:
        return "failed"


def _result_of_exception(exc: BaseException) -> tuple[str, int]:
    """Map the exception that ended an operation to (result, exit code)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", int(ExitCode.INTERRUPTED)
    if isinstance(exc, TnoError):
        for cls, result in ((Locked, "locked"), (Refused, "refused"), (InvalidInput, "invalid")):
            if isinstance(exc, cls):
                return result, int(exc.exit_code)
        return _RESULT_OF_CODE.get(exc.exit_code, "failed"), int(exc.exit_code)
    return "failed", int(ExitCode.FAILED)


@contextmanager
def operation(
    state_dir: Path,
    verb: str,
    args: Sequence[str],
    tenants: Sequence[str] = (),
    hosts: Sequence[str] = (),
    registry: SecretRegistry | None = None,
) -> Iterator[Operation]:
    """Audit the enclosed block as one operation; write exactly one record when it ends.

    The result comes from the exception that ends the block (TnoError subclasses map to their
    exit code, KeyboardInterrupt to ``interrupted``, anything else to ``failed``), which is then
    re-raised; without exception, from ``op.result``/``op.exit_code`` if the action set them, else ok.
    """
    reg = registry or SECRETS
    started = utc_now()
    op = Operation(
        id=new_operation_id(started),
        verb=verb,
        args=redact_args(list(args), reg.snapshot()),
        tenants=sorted(set(tenants)),
        hosts=sorted(set(hosts)),
        started=started,
    )
    clock = time.monotonic()
    try:
        yield op
    except BaseException as exc:
        op.result, op.exit_code = _result_of_exception(exc)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        op.details.setdefault("error", message)
        try:
            append(state_dir, _record(op, time.monotonic() - clock), reg)
        except OSError as write_error:  # never mask the operation's own error
            log.warning("could not write the audit record of %s: %s", op.id, write_error)
        raise
    if op.exit_code is None:
        op.exit_code = _CODE_OF_RESULT.get(op.result or "ok", int(ExitCode.FAILED))
    if op.result is None:
        op.result = _result_of_code(op.exit_code)
    try:
        append(state_dir, _record(op, time.monotonic() - clock), reg)
    except OSError as write_error:
        raise OperationFailed(
            f"operation {op.id} ran but its audit record could not be written: {write_error}"
        ) from None


def _record(op: Operation, duration: float) -> dict[str, Any]:
    """The audit record of a finished operation (field order = documented order)."""
    return {
        "time": rfc3339(op.started),
        "id": op.id,
        "operator": current_operator(),
        "from_host": current_host(),
        "verb": op.verb,
        "args": op.args,
        "tenants": op.tenants,
        "hosts": op.hosts,
        "result": op.result,
        "exit_code": op.exit_code,
        "duration_seconds": round(duration, 3),
        "artifacts": op.artifacts,
        "details": op.details,
    }


def append(state_dir: Path, record: dict[str, Any], registry: SecretRegistry | None = None) -> None:
    """Append one record: scrubbed, one line, one ``write()`` with ``O_APPEND``, then ``fsync``."""
    reg = registry or SECRETS
    clean = {key: reg.scrub(value) for key, value in record.items()}  # the record's own keys stay readable
    if isinstance(clean.get("args"), list):
        clean["args"] = redact_args(clean["args"], reg.snapshot())
    data = (json.dumps(clean, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    path = audit_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
        # The flock only makes the "did a writer die mid-line?" check exact (a racing reader can see a
        # write half done); O_APPEND + one write() is what keeps records whole.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a writer died mid-line: start ours on a fresh line
        written = os.write(fd, data)
        while written < len(data):  # never happens on local files; do not lose the tail if it does
            written += os.write(fd, data[written:])
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class AuditLog:
    """What :func:`read_log` found: the records kept and how many unreadable lines were skipped."""

    records: list[dict[str, Any]]
    skipped: int


_STR_FIELDS = ("id", "time", "operator", "verb", "result")


def _record_of(line: bytes) -> dict[str, Any] | None:
    """One audit line as a record, or None when it is not one (bad JSON, nesting, or field types).

    ``tenants`` must be a list of strings (``"tenants": 5`` made ``history --tenant`` crash); the
    fields ``history`` prints must be strings when present.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    tenants = record.get("tenants", [])
    if tenants is None:
        tenants = []
    if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
        return None
    if any(not isinstance(record.get(k, ""), str) for k in _STR_FIELDS):
        return None
    record["tenants"] = tenants
    return record


def read_log(state_dir: Path, tenant: str | None = None, limit: int | None = None) -> AuditLog:
    """Read the audit log oldest first; keep the last ``limit`` records (all when None or 0) of ``tenant``."""
    path = audit_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return AuditLog([], 0)
    records: list[dict[str, Any]] = []
    skipped = 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        record = _record_of(line)
        if record is None:  # truncated last line of a crashed writer, or a damaged line
            skipped += 1
            continue
        if tenant is None or tenant in record["tenants"]:
            records.append(record)
    if limit and limit > 0:
        records = records[-limit:]
    return AuditLog(records, skipped)


def read(state_dir: Path, tenant: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit records (see :func:`read_log`); warns once with the count of skipped lines."""
    result = read_log(state_dir, tenant, limit)
    if result.skipped:
        log.warning("%s: skipped %d unreadable line(s)", audit_path(state_dir), result.skipped)
    return result.records
