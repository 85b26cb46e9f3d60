"""Record what tnoctl did and guard what it is doing: audit log, per-tenant locks, the state store.

Modules: ``audit`` (append-only ``audit.jsonl``), ``locks`` (``locks/<tenant>.lock``),
``redact`` (secrets out of every record), ``store`` (state read by the exporter).
This package only holds the small identity helpers that audit records and locks share:
who runs the operation, from which host, and when. See docs/state.md.
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime


def current_operator() -> str:
    """The human behind the operation: ``$SUDO_USER`` under sudo, else the login name."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        return sudo_user
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers): fall back to the uid
        return f"uid{os.getuid()}"


def current_host() -> str:
    """The host tnoctl runs on (locks are only auto-recovered on the host that took them)."""
    return socket.gethostname()


def utc_now() -> datetime:
    """Now, timezone-aware UTC (one place, so tests can reason about it)."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-11-29T15:30:00Z``: RFC 3339 UTC, second precision, as audit records and locks use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["current_host", "current_operator", "rfc3339", "utc_now"]
