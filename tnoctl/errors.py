"""One exception root and one exit-code enum, mapped to each other in exactly one place.

Every error a user can cause or meet derives from :class:`TnoError` and carries the
exit code the CLI returns for it. ``tnoctl.cli.main`` is the only place that turns an
exception into an exit status and a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of every tnoctl verb (documented in README and ``tnoctl --help``)."""

    OK = 0
    FAILED = 1  # the operation failed on at least one tenant or host, or something is critical
    INVALID = 2  # invalid input or usage (bad inventory, unknown tenant, bad flag)
    LOCKED = 3  # a tenant or host is locked by another operation
    REFUSED = 4  # refused by a guard: maintenance window, missing root, wrong inventory
    INTERRUPTED = 130  # interrupted by the operator (SIGINT)


class TnoError(Exception):
    """Root of every error tnoctl reports to the user as one line (no traceback)."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class OperationFailed(TnoError):
    """The operation ran but failed on at least one tenant or host."""

    exit_code = ExitCode.FAILED


class InvalidInput(TnoError):
    """Bad input: inventory, tenant file, argument. ``details`` holds every `file:field: message`."""

    exit_code = ExitCode.INVALID


class Locked(TnoError):
    """A tenant (or host) is held by another operation."""

    exit_code = ExitCode.LOCKED


class Refused(TnoError):
    """A guard refused the operation (maintenance window, root required, wrong inventory...)."""

    exit_code = ExitCode.REFUSED


class Interrupted(TnoError):
    """The operator interrupted the operation; state is left so that a rerun converges."""

    exit_code = ExitCode.INTERRUPTED


def unknown(kind: str, name: str, known: Iterable[str], limit: int = 20) -> InvalidInput:
    """``unknown tenant 'givor'; did you mean 'givors'?``, else the known names (at most ``limit``)."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return InvalidInput(f"unknown {kind} {name!r}; did you mean {close[0]!r}?")
    shown = ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
    return InvalidInput(f"unknown {kind} {name!r} (known: {shown or 'none'})")
