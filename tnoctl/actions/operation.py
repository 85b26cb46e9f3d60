"""The one operation context of every changing verb, and the :class:`Outcome` every action returns.

``with operation(env, "deploy", request_params, tenants=...) as op:`` does, in this order:

1. opens the audit record with the operation's OWN parameters (never ``sys.argv``: a runbook step
   run in-process is recorded with its own parameters), secrets masked by name and by value;
2. checks the tenants' maintenance windows when ``window`` names the component the operation
   restarts (closed window: :class:`~tnoctl.errors.Refused`, exit 4);
3. takes the tenants' locks when ``lock`` (held elsewhere: :class:`~tnoctl.errors.Locked`, exit 3);
4. on exit releases the locks and writes the audit end record: the result comes from the exception
   that ended the block (TnoError -> its exit code, KeyboardInterrupt -> 130 "interrupted",
   anything else -> 1; the exception is re-raised for ``tnoctl.cli.main`` to report) or from
   ``op.fail(code, reason)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.config.window import Window
from tnoctl.errors import ExitCode, Refused
from tnoctl.state import audit, locks


@dataclass
class Outcome:
    """What an action returns; the CLI renders ``rows``/``columns`` (or ``data`` with --json) and exits."""

    exit_code: ExitCode = ExitCode.OK
    result: str = "ok"  # ok | failed | refused | interrupted | changes-pending ...
    rows: list[list[object]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    lines: list[str] = field(default_factory=list)  # human text after the table (stdout; not with --json)
    errors: list[str] = field(default_factory=list)  # per-host/tenant failure lines (stderr, always)

    @property
    def ok(self) -> bool:
        """True when the exit code is 0."""
        return self.exit_code == ExitCode.OK

    @classmethod
    def failed(cls, message: str = "", code: ExitCode = ExitCode.FAILED, data: dict[str, Any] | None = None) -> Outcome:
        """A failed outcome with a message (and optional --json data)."""
        return cls(exit_code=code, result=audit_result(code), message=message, data=dict(data or {}))


def audit_result(code: int) -> str:
    """The result word of an exit code (as the audit log writes it)."""
    return {0: "ok", 1: "failed", 2: "invalid", 3: "locked", 4: "refused", 130: "interrupted"}.get(int(code), "failed")


def param_words(params: Mapping[str, Any]) -> list[str]:
    """The operation's parameters as ``key=value`` words for the audit record (None and () omitted).

    Secret-looking keys (``passphrase=``, ``token=``...) are masked by the audit log's name rules,
    and known secret values by its value registry.
    """
    words: list[str] = []
    for key, value in params.items():
        if value is None or value == () or value == []:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        words.append(f"{key}={value}")
    return words


def closed_windows(env: Env, tenants: Sequence[str], now: datetime) -> list[str]:
    """``slug (window)`` of every tenant whose maintenance window is closed at ``now``."""
    closed = []
    for slug in sorted(set(tenants)):
        tenant = env.inventory.tenant(slug)
        if tenant.maintenance_window and not Window.parse(tenant.maintenance_window).contains(now):
            closed.append(f"{slug} ({tenant.maintenance_window})")
    return closed


@contextmanager
def operation(
    env: Env,
    verb: str,
    params: Mapping[str, Any],
    *,
    tenants: Sequence[str] = (),
    hosts: Sequence[str] = (),
    lock: bool = True,
    window: str | None = None,
) -> Iterator[audit.Operation]:
    """Guard and record one operation (see the module docstring); yields the audit operation."""
    with audit.operation(env.state_dir, verb, param_words(params), tenants=tenants, hosts=hosts) as op:
        if window is not None:
            now = datetime.fromtimestamp(env.clock(), tz=UTC)
            closed = closed_windows(env, tenants, now)
            if closed:
                raise Refused(f"{verb}: {window} services of tenant(s) outside their maintenance window: "
                              + ", ".join(closed))
        if not lock:
            yield op
            return
        with locks.hold(env.state_dir, list(tenants), verb, op.id, warn=env.output.warn):
            yield op


def outcome_of(
    op: audit.Operation,
    *,
    rows: list[list[object]] | None = None,
    columns: list[str] | None = None,
    data: dict[str, Any] | None = None,
    message: str = "",
    lines: list[str] | None = None,
    errors: list[str] | None = None,
) -> Outcome:
    """An Outcome carrying the operation's exit code and result (after ``op.fail``, else ok)."""
    code = ExitCode(op.exit_code) if op.exit_code is not None else ExitCode.OK
    return Outcome(exit_code=code, result=op.result or audit_result(code), rows=list(rows or []),
                   columns=list(columns or []), data=dict(data or {}), message=message,
                   lines=list(lines or []), errors=list(errors or []))
