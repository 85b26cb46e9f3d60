"""The one result type every probe returns, and the probe description the runner executes.

Why: the exporter, ``tnoctl status`` and the benchmark all consume the same typed result,
so each probe module only has to produce it. Labels are tenant/component/check only: a
probe never reports a mailbox, user or document name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Severity = Literal["warning", "critical"]

HOST_KEY_MARKERS = ("host key mismatch", "BadHostKeyException", "Host key verification failed",
                    "REMOTE HOST IDENTIFICATION HAS CHANGED")
"""How a host-key mismatch shows in a failure detail: tnoctl's SSH adapter ("<host>: host key mismatch
(...); refusing to connect"), paramiko's exception name, OpenSSH's messages."""


def is_host_key_mismatch(detail: str) -> bool:
    """True when a failure reason says the host presented another key (a possible man-in-the-middle)."""
    return any(marker in detail for marker in HOST_KEY_MARKERS)


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one check of one tenant's component.

    ``value`` is the check's main figure (days of certificate left, queued messages, backup
    age...); ``values`` holds extra named figures (documented per check) the exporter maps to
    metrics; ``severity`` says how bad a failure is (``tnoctl status`` exits 1 on critical).
    """

    tenant: str
    component: str
    check: str
    ok: bool
    latency_seconds: float
    detail: str = ""
    value: float | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    severity: Severity = "critical"

    def __post_init__(self) -> None:
        # A host-key mismatch is critical wherever it is seen (status, runbooks, exporter), whatever
        # severity the check's ordinary failures have: a "warning" queue probe must not hide it.
        if not self.ok and self.severity != "critical" and is_host_key_mismatch(self.detail):
            object.__setattr__(self, "severity", "critical")


ProbeFn = Callable[[float], "ProbeResult | list[ProbeResult]"]
"""A probe body: receives its timeout in seconds, returns its result(s) (never raises on purpose)."""


class Probe(NamedTuple):
    """One check to run: identity (for timeout results) and the body.

    A host-level probe (the mail queue: one SSH command for every tenant of a host) lists
    all the tenants it reports for in ``tenants`` so that a timeout fails each of them.
    Immutable; a named tuple rather than a frozen dataclass: a probe round at 35,000 communes
    builds 210,000 of them, and a frozen dataclass sets each field through ``object.__setattr__``
    (a quarter of the round's build, issue 18).
    """

    tenant: str
    component: str
    check: str
    run: ProbeFn
    timeout: float = 10.0
    severity: Severity = "critical"
    tenants: tuple[str, ...] = ()

    def failed(self, detail: str, latency: float) -> list[ProbeResult]:
        """The results reported when the body raised or did not finish in time."""
        return [ProbeResult(t, self.component, self.check, False, latency, detail, severity=self.severity)
                for t in (self.tenants or (self.tenant,))]


class Stopwatch:
    """Monotonic elapsed time since creation (latencies are never wall-clock differences)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def short_error(exc: BaseException) -> str:
    """One-line reason for a failure, without secrets (exception text only, truncated)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]
